# DMKD ablation on BCCD: the two reconstructions averaged with fixed weights 0.5, 0.5 (no learned fusion).
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto', fusion='fixed')]
