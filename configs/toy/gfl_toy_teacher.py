# Toy GFL teacher: twice as wide a backbone and twice as deep a head as the toy GFL student, trained 2.5x longer.
_base_ = [
    '../_base_/models/gfl_toy_teacher.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

train_cfg = dict(max_epochs=15)
