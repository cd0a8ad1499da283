# PKD on the toy data: toy RetinaNet student (64-ch FPN, P3-P7) <- toy teacher (128-ch FPN).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='PKD', loss_weight=10.0, connector='conv1x1')]
