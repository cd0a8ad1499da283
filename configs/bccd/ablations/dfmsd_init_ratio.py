# DFMSD ablation on BCCD: a ten times lower weight. auto_ratio 0.072 is the ratio the area-scaled weight gives at
# initialisation (forward passes of the untrained student); in training it fixes the weight at about 1.8 instead of
# the default's ratio 0.86 (weight about 22).
# Masks from the aligned teacher, as in dfmsd_aligned_attention.py, the setting this row is compared with.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto',
              attention_from='aligned', auto_ratio=0.072)]
