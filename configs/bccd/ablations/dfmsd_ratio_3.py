# DFMSD ablation on BCCD: auto_ratio 3, above the default 0.86, which fixes the weight near 75 instead of 21.6.
# Masks from the aligned teacher, as in dfmsd_aligned_attention.py, the setting this row is compared with.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto',
              attention_from='aligned', auto_ratio=3.0)]
