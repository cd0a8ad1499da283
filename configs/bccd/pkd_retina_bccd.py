# PKD on BCCD with its published setting (weight 10; the loss does not grow with the feature area).
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='PKD', loss_weight=10.0)]
