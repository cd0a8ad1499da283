# DFMSD on the toy data: DMKD-style dual masking on per-level standardised features, object-aware masking
# growing over two stages (the toy run has one teacher; the COCO config switches teachers between stages).
# alpha (1e-6 on COCO, scaled for the toy feature area) and the mask ratio were chosen on seed 0 of the toy study
# (docs/results.md lists what was tried).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='DFMSD', alpha_dfmsd=3e-4, mask_ratio=0.5, enhance=0.5)]
stages = [
    dict(epochs=3, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=3, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=1.0))),
]
