# EfficientFace ablation on BCCD: a plain FPN (top-down sums, no bottom-up path, no fusion weights) instead of SBiFPN.
_base_ = ['../efficientface_bccd.py']

model = dict(neck=dict(fusion='fpn'))
