# DFMSD ablation on BCCD: masks chosen by the attention of the raw teacher feature, not the aligned one.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto', attention_from='raw')]
