# DMKD ablation on BCCD: MGD's random masks (each entry with probability 0.65), attention unused.
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto', mask_rule='random')]
