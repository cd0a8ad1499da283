# RetinaNet teacher on BCCD, trained from scratch: twice as wide a backbone and twice as deep a head as the student
# (the toy teacher's model), trained 2.5 times as long (20 epochs against 8).
_base_ = [
    '../_base_/models/retinanet_toy_teacher.py',
    '../_base_/datasets/bccd.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

model = dict(bbox_head=dict(num_classes=3))
train_cfg = dict(max_epochs=20)
