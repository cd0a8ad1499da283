# DMKD ablation on BCCD: auto_ratio 2, below the default 5.4, which fixes the weight near 1 instead of 2.5.
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto', auto_ratio=2.0)]
