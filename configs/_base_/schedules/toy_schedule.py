# Short from-scratch schedule for the toy data set: AdamW with linear warm-up over the first 100 iterations, then
# cosine decay from epoch 1 to the end of training; validation after every epoch. The cosine scheduler names no
# `end` (mmengine's Runner sets it to train_cfg.max_epochs) and no `T_max` (then end - begin), so a config that
# trains longer or shorter sets `train_cfg = dict(max_epochs=N)` and nothing else (`--cfg-options
# train_cfg.max_epochs=N` on the command line); with N = 1 kdtools' tools leave the then empty cosine phase out.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.05, by_epoch=True, begin=1, convert_to_iter_based=True),
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10, norm_type=2))

auto_scale_lr = dict(enable=False, base_batch_size=8)
