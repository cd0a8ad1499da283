# DFMSD ablation on BCCD: no per-level alignment (masks and loss on the raw features, MGD's alpha).
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto', align=None)]
