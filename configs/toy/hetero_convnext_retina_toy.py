# Heterogeneous pair 2, ConvNeXt teacher -> ResNet student: the timm ConvNeXt-Atto RetinaNet toy teacher (64-ch FPN,
# P3-P7) distilled into the toy ResNet-18 RetinaNet student (64-ch FPN, P3-P7) with DFMSD. Train the teacher first:
#   python tools/train.py configs/toy/convnext_toy_teacher.py
# Both necks give P3-P7, so matching by stride pairs student level #i with teacher level #i (p3..p7). Matched levels
# have equal channels and sizes, so no connector is needed.
_base_ = ['./retinanet_toy_student.py']

teacher = dict(config='{{fileDirname}}/convnext_toy_teacher.py', checkpoint='work_dirs/convnext_toy_teacher')
distill = [dict(type='DFMSD', alpha_dfmsd=1e-4, mask_ratio=0.65, enhance=0.5)]
stages = [
    dict(epochs=3, teacher=teacher, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=3, teacher=teacher, distillers=dict(dfmsd=dict(enhance=1.0))),
]
