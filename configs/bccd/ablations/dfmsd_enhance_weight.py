# DFMSD ablation on BCCD: enhancement as a loss weight inside GT boxes instead of a bias of the mask selection.
_base_ = ['../dfmsd_retina_bccd.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto', enhance_mode='weight')]
