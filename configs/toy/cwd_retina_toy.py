# CWD on the toy data (tau=1, weight 10 as published; the loss is resolution-free).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='CWD', tau=1.0, loss_weight=10.0)]
