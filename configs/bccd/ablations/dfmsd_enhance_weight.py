# DFMSD ablation on BCCD: enhancement as a loss weight inside GT boxes instead of a bias of the mask selection.
# Masks from the aligned teacher, as in dfmsd_aligned_attention.py, the setting this row is compared with.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto',
              attention_from='aligned', enhance_mode='weight')]
