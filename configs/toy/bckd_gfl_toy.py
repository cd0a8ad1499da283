# BCKD on the toy data: binary classification and IoU-based localization distillation, toy GFL student <- teacher.
_base_ = ['./gfl_toy_student.py', '../_base_/gfl_toy_teacher.py']

distill = [dict(type='BCKD', cls_weight=1.0, loc_weight=4.0)]
