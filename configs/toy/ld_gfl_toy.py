# LD on the toy data: toy GFL student (2-conv head) <- toy GFL teacher (ResNet-18/2, 4-conv head), same bins.
_base_ = ['./gfl_toy_student.py', '../_base_/gfl_toy_teacher.py']

distill = [dict(type='LD', tau=10.0, loss_weight=0.25, vlr_weight=0.0)]
