# Stronger RetinaNet teacher for the toy data set, trained from scratch: ResNet-18 at 1/2 width (stages of
# 32/64/128/256 channels), the student's 64-channel FPN on P3-P7 and a 4-conv head; anchors, losses and assignment
# as in the student, so both predict on the same anchors.
_base_ = ['./retinanet_toy_student.py']

model = dict(
    backbone=dict(base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256]),
    bbox_head=dict(stacked_convs=4))
