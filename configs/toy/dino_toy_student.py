# Toy DINO student (configs/_base_/models/dino_toy_student.py: ResNet-18/4, 2 + 2 transformer layers, 100 queries),
# trained from scratch on the toy data with DINO's optimiser (AdamW, weight decay 1e-4, gradient clip 0.1) at lr 4e-4
# instead of DINO's 1e-4 (from scratch, batch 8, toy mAP after 2 epochs: 0.6 at 1e-4, 3.9 at 4e-4, 2.1 at 1e-3), on
# the toy schedule's warm-up and cosine decay, 6 epochs. Baseline of the toy query-distillation configs.
_base_ = [
    '../_base_/models/dino_toy_student.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

train_cfg = dict(max_epochs=6)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
