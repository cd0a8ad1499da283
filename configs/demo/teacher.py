# The demo's teacher (tools/demo.py, make demo): the toy RetinaNet teacher on a 5-epoch schedule, validated once at
# the end, so that the whole demo takes about 5 minutes on 2 CPU cores. configs/toy/retinanet_toy_teacher.py trains the
# same model for 15 epochs.
_base_ = ['../toy/retinanet_toy_teacher.py']

train_cfg = dict(max_epochs=5, val_interval=5)
