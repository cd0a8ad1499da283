# IE-KD on BCCD with the authors' setting: natural channel halves, inheritance and exploration weights 1, the
# negative factor-transfer exploration loss, and their two-stage schedule through kdtools' stages: the teacher's
# auto-encoder first learns to rebuild the teacher's FPN features (epoch 1: reconstruction only), then is frozen
# while the student's halves inherit and explore (epochs 2-8).
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='IEKD', split='natural', exploration='l1', inherit_weight=1.0, explore_weight=1.0)]
stages = [
    dict(epochs=1, teacher={{_base_.teacher}}, distillers=dict(iekd=dict(phase='autoencoder'))),
    dict(epochs=7, teacher={{_base_.teacher}}, distillers=dict(iekd=dict(phase='distill'))),
]
# Each stage leaves some distiller modules out of the graph (the student encoders, then the auto-encoder).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
