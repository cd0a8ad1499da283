# The demo's DFMSD student: configs/toy/dfmsd_retina_toy.py on the demo's 3-epoch schedule (see student.py), its two
# stages 1 and 2 epochs.
_base_ = ['../toy/dfmsd_retina_toy.py']

train_cfg = dict(max_epochs=3, val_interval=3)
stages = [
    dict(epochs=1, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=2, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=1.0))),
]
