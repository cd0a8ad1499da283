# PKD on the toy data: the toy RetinaNet student (64-ch FPN) learns from the toy teacher (128-ch FPN).
_base_ = ['./retinanet_toy_student.py']

teacher = dict(config='configs/toy/retinanet_toy_teacher.py', checkpoint='work_dirs/retinanet_toy_teacher')
distill = [dict(type='PKD', loss_weight=10.0, connector='conv1x1')]
