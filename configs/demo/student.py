# The demo's student without distillation: the toy RetinaNet student on a 3-epoch schedule, validated once at the end.
# The demo's DFMSD and DMKD students (dfmsd.py, dmkd.py) use the same schedule.
_base_ = ['../toy/retinanet_toy_student.py']

max_epochs = 3
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
