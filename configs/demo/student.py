# The demo's student without distillation: the toy RetinaNet student on a 3-epoch schedule, validated once at the end.
# The demo's DFMSD and DMKD students (dfmsd.py, dmkd.py) use the same schedule.
_base_ = ['../toy/retinanet_toy_student.py']

train_cfg = dict(max_epochs=3, val_interval=3)
