# Toy RetinaNet student: trains from scratch on the toy data set in about two minutes on two CPU cores.
_base_ = [
    '../_base_/models/retinanet_toy_student.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]
