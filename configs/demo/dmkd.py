# The demo's DMKD student: configs/toy/dmkd_retina_toy.py on the demo's 3-epoch schedule (see student.py).
_base_ = ['../toy/dmkd_retina_toy.py']

train_cfg = dict(max_epochs=3, val_interval=3)
