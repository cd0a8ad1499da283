# The demo's DFMSD student: configs/toy/dfmsd_retina_toy.py on the demo's 3-epoch schedule (see student.py), its two
# stages 1 and 2 epochs.
_base_ = ['../toy/dfmsd_retina_toy.py']

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
stages = [
    dict(epochs=1, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=2, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=1.0))),
]
