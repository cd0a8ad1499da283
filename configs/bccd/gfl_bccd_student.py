# GFL student on BCCD, trained from scratch: the toy GFL student's model (the RetinaNet student's backbone and FPN,
# a 2-conv GFL head) with 3 classes, on the toy schedule for 8 epochs, as the RetinaNet student.
_base_ = [
    '../_base_/models/gfl_toy_student.py',
    '../_base_/datasets/bccd.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

model = dict(bbox_head=dict(num_classes=3))
train_cfg = dict(max_epochs=8)
