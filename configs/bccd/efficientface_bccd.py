# EfficientFace student on BCCD, trained from scratch like the RetinaNet student (retinanet_bccd_student.py): the
# EfficientFace model (TinyNet-E, SBiFPN + RFE + attention neck on P3-P7, 64-channel head; no heavier than the
# RetinaNet student, see its base config) with 3 classes, on the toy schedule (AdamW, warm-up, cosine decay) for
# 8 epochs.
_base_ = [
    '../_base_/models/efficientface_student.py',
    '../_base_/datasets/bccd.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

model = dict(bbox_head=dict(num_classes=3))
train_cfg = dict(max_epochs=8)
