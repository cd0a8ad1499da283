# Stronger RTMDet teacher for the toy data set: CSPNeXt at 1/4 width and 1/3 depth (32/64/128/256 channels) and a
# 64-channel neck and head; points, assignment and losses as the toy student's.
_base_ = ['./rtmdet_toy_student.py']

model = dict(
    backbone=dict(deepen_factor=0.33, widen_factor=0.25),
    neck=dict(in_channels=[64, 128, 256], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64))
