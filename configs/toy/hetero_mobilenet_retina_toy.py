# Heterogeneous pair 4, heavier teacher -> lightweight student: the RetinaNet toy teacher (ResNet-18 at 1/2 width,
# P3-P7) distilled into the MobileNetV3-Small toy student (48-ch FPN, P3-P7) with DFMSD.
# Both necks give P3-P7: matching by stride pairs level #i with level #i (p3..p7). The 1x1 connectors map the
# student's 48 channels to the teacher's (required: without them the build stops).
_base_ = ['./mobilenet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='DFMSD', alpha_dfmsd=1e-4, mask_ratio=0.65, enhance=0.5, connector='conv1x1')]
stages = [
    dict(epochs=3, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=3, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=1.0))),
]
