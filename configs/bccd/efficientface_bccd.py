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

# Without the RFE module: it is built for faces of unbalanced aspect ratios, BCCD's cells are round, and on BCCD
# the model trained without it gained 4.7 mAP on average, on every seed (docs/results.md;
# configs/bccd/efficientface_ablations/rfe.py puts it back).
model = dict(bbox_head=dict(num_classes=3), neck=dict(rfe=False))
train_cfg = dict(max_epochs=8)
