# Stronger RetinaNet teacher for the toy data set, trained from scratch: ResNet-18 at 1/2 width (stages of
# 32/64/128/256 channels), a 128-channel FPN and a 4-conv head; anchors, losses and assignment as in the student.
_base_ = ['./retinanet_toy_student.py']

model = dict(
    backbone=dict(base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=128),
    bbox_head=dict(
        in_channels=128,
        stacked_convs=4,
        feat_channels=128,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)))
