# PKD on the toy GFL pair: the feature distiller on the FPN outputs, the head distillers' comparison.
_base_ = ['./gfl_toy_student.py', '../_base_/gfl_toy_teacher.py']

distill = [dict(type='PKD', loss_weight=10.0)]
