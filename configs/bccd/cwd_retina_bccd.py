# CWD on BCCD with its published setting (tau 1, weight 10; the loss does not grow with the feature area).
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='CWD', tau=1.0, loss_weight=10.0)]
