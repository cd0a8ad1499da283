# Slim toy RetinaNet student (32-channel FPN on P3-P5), trained on its own with the toy schedule; the baseline for
# configs/toy/hetero_slim_retina_toy.py.
_base_ = [
    '../_base_/models/retinanet_toy_slim_student.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]
