# DFMSD ablation on BCCD: auto_ratio 3, above the default 0.86, which fixes the weight near 75 instead of 21.6.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto', auto_ratio=3.0)]
