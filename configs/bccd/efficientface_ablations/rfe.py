# EfficientFace ablation on BCCD: the receptive field enhancement (RFE) module on the neck's outputs, as in the full
# model (configs/_base_/models/efficientface_student.py), which the BCCD config leaves out.
_base_ = ['../efficientface_bccd.py']

model = dict(neck=dict(rfe=True))
