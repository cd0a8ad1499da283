# DMKD ablation on BCCD: draw the masked entries with probability proportional to the teacher's attention.
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto', mask_rule='sample')]
