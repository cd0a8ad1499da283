# The demo's teacher (tools/demo.py, make demo): the toy RetinaNet teacher on a 5-epoch schedule, validated once at
# the end, so that the whole demo fits in 10 minutes on 2 CPU cores. configs/toy/retinanet_toy_teacher.py trains the
# same model for 15 epochs.
_base_ = ['../toy/retinanet_toy_teacher.py']

max_epochs = 5
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.05,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        T_max=max_epochs - 1,
        convert_to_iter_based=True),
]
