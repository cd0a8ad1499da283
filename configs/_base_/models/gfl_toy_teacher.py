# Stronger GFL teacher for the toy data set: ResNet-18 at 1/2 width (as the toy RetinaNet teacher), the student's
# 64-channel FPN and a 4-conv head of the same width, anchors and bins, so that head distillers (LD, BCKD) compare
# predictions location by location and CrossKD can run the student's head features through the teacher's head.
_base_ = ['./gfl_toy_student.py']

model = dict(
    backbone=dict(base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256]),
    bbox_head=dict(stacked_convs=4))
