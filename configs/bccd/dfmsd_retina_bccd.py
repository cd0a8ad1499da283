# DFMSD on BCCD: DMKD-style dual masking on per-level standardised features, object-aware masking growing over two
# stages (one teacher here); the weight carried over to BCCD's feature area by loss_weight='auto'.
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto')]
stages = [
    dict(epochs=4, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=4, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=1.0))),
]
