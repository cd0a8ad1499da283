# IE-KD ablation: the authors' two-stage schedule through kdtools' stages instead of the online auto-encoder: the
# teacher's auto-encoder first learns to rebuild the teacher's FPN features (epoch 1: reconstruction only), then is
# frozen while the student's halves inherit and explore (epochs 2-8).
_base_ = ['../iekd_retina_bccd.py']

stages = [
    dict(epochs=1, teacher={{_base_.teacher}}, distillers=dict(iekd=dict(phase='autoencoder'))),
    dict(epochs=7, teacher={{_base_.teacher}}, distillers=dict(iekd=dict(phase='distill'))),
]
# Each stage leaves some distiller modules out of the graph (the student encoders, then the auto-encoder).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
