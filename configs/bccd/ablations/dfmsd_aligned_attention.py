# DFMSD ablation on BCCD: masks chosen by the attention of the aligned (standardised) teacher feature instead of the
# raw one. The other DFMSD ablations vary one setting from this one.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto', attention_from='aligned')]
