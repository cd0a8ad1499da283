# IE-KD on the toy data: toy RetinaNet student (ResNet-18/4, 64-ch FPN, P3-P7) <- toy teacher (ResNet-18/2), the
# authors' setting (natural halves, weights 1) and two-stage schedule: the teacher's auto-encoder learns to rebuild
# the teacher's features in epoch 1, then is frozen while the student inherits and explores (epochs 2-6).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='IEKD', split='natural', exploration='l1', inherit_weight=1.0, explore_weight=1.0)]
stages = [
    dict(epochs=1, teacher={{_base_.teacher}}, distillers=dict(iekd=dict(phase='autoencoder'))),
    dict(epochs=5, teacher={{_base_.teacher}}, distillers=dict(iekd=dict(phase='distill'))),
]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
