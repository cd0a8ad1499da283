# DMKD ablation on BCCD: a ten times lower weight. auto_ratio 5.4 is the ratio the area-scaled published weight gives
# at initialisation (forward passes of the untrained student); in training it fixes the weight at about 2.5 instead
# of the default's ratio 45 (weight about 22).
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto', auto_ratio=5.4)]
