# The demo's DMKD student: configs/toy/dmkd_retina_toy.py on the demo's 3-epoch schedule (see student.py), its weight
# set by loss_weight='auto' (DMKD's default ratio, chosen on BCCD): on this short schedule the toy study's weight
# (alpha 5e-3, tuned for 12 epochs) left DMKD level with the student.
_base_ = ['../toy/dmkd_retina_toy.py']

train_cfg = dict(max_epochs=3, val_interval=3)
distill = [dict(type='DMKD', loss_weight='auto')]
