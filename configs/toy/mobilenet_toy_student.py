# Lightweight toy student (timm MobileNetV3-Small, 48-channel FPN on P3-P7), trained on its own with the toy schedule;
# the baseline for configs/toy/hetero_mobilenet_retina_toy.py.
_base_ = [
    '../_base_/models/mobilenet_toy_student.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]
