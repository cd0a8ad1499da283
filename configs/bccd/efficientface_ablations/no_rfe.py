# EfficientFace ablation on BCCD: no receptive field enhancement (RFE) module on the neck's outputs.
_base_ = ['../efficientface_bccd.py']

model = dict(neck=dict(rfe=False))
