# DFMSD ablation on BCCD: no stage schedule, the enhancement at full strength (1.0) from the start.
# Masks from the aligned teacher, as in dfmsd_aligned_attention.py, the setting this row is compared with.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=1.0, loss_weight='auto',
              attention_from='aligned')]
stages = None
