# DMKD ablation on BCCD: auto_ratio 45, the ratio the area-scaled published weight gives over the first 50
# training iterations, which fixes the weight near the area rule's 21.9 instead of the default's 2.5.
_base_ = ['../dmkd_retina_bccd.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto', auto_ratio=45.0)]
