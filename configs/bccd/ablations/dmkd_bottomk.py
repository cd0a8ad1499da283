# DMKD ablation on BCCD: mask the entries the teacher attends to least instead of most.
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto', mask_rule='bottomk')]
