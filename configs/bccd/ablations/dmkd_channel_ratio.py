# DMKD ablation on BCCD: a separate, lower mask ratio for the channel branch (0.65 of positions, 0.25 of
# channels).
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, channel_mask_ratio=0.25, loss_weight='auto')]
