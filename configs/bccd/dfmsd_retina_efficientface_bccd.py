# DFMSD on BCCD into the EfficientFace student: the BCCD RetinaNet teacher (ResNet-18 at 1/2 width, 64-channel FPN
# on P3-P7) distilled into the EfficientFace student (TinyNet-E, 64-channel SBiFPN + RFE + attention neck on P3-P7)
# with dfmsd_retina_bccd.py's settings: dual masking on per-level standardised features, object-aware masking
# growing over two stages, the weight carried over to BCCD's feature area by loss_weight='auto'.
# Both necks give 64-channel P3-P7: levels pair by stride, no connector is needed (connector='conv1x1' would map the
# student's channels to the teacher's if out_channels were changed).
_base_ = ['./efficientface_bccd.py', '../_base_/bccd_teacher.py']

distill = [dict(type='DFMSD', mask_ratio=0.65, enhance=0.5, loss_weight='auto')]
stages = [
    dict(epochs=4, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=4, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=1.0))),
]
