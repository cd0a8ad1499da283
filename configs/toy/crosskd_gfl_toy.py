# CrossKD on the toy data: the toy GFL student's head features after its last conv (k=2 of 2) go through the toy
# teacher's remaining head layers (convs 3-4, gfl_cls, gfl_reg); the crossed predictions mimic the teacher's.
_base_ = ['./gfl_toy_student.py', '../_base_/gfl_toy_teacher.py']

distill = [dict(type='CrossKD', reused_layer=2, cls_weight=1.0, box_loss='kl', box_weight=4.0)]
