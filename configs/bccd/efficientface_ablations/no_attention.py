# EfficientFace ablation on BCCD: no attention module (channel + spatial attention) on the neck's outputs.
_base_ = ['../efficientface_bccd.py']

model = dict(neck=dict(attention=False))
