# Feature + head-output distillation on the toy RTMDet pair: PKD on the neck outputs (32 -> 64 channels, so a 1x1
# connector) and CWD on the class-score maps of the head's per-level predictors (5 channels on both sides).
_base_ = ['./rtmdet_toy_student.py', '../_base_/rtmdet_toy_teacher.py']

distill = [
    dict(type='PKD', loss_weight=10.0, connector='conv1x1'),
    dict(type='CWD', tau=1.0, loss_weight=5.0, student_tap=[f'bbox_head.rtm_cls.{i}' for i in range(3)]),
]
