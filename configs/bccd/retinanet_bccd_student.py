# RetinaNet student on BCCD, trained from scratch: the toy student's model (ResNet-18 at 1/4 width, 64-channel FPN
# on P3-P7, 2-conv head) with 3 classes, on the toy schedule (AdamW, warm-up, cosine decay) for 8 epochs.
_base_ = [
    '../_base_/models/retinanet_toy_student.py',
    '../_base_/datasets/bccd.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

model = dict(bbox_head=dict(num_classes=3))
train_cfg = dict(max_epochs=8)
