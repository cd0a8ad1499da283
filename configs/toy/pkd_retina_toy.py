# PKD on the toy data: toy RetinaNet student (ResNet-18/4, 64-ch FPN, P3-P7) <- toy teacher (ResNet-18/2, 4-conv head).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='PKD', loss_weight=10.0)]
