# Heterogeneous pair 3, fewer channels and levels: the RetinaNet toy teacher (ResNet-18 at 1/2 width, P3-P7) distilled
# into the slim toy student (32-ch FPN, P3-P5) with DFMSD.
# Matching by stride pairs the student's three levels with the teacher's first three (p3: #0-#0, p4: #1-#1,
# p5: #2-#2); the teacher's P6 and P7 have no partner. The 1x1 connectors map the student's 32 channels to the
# teacher's wider FPN (required: without them the build stops).
_base_ = ['./retinanet_toy_slim_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='DFMSD', alpha_dfmsd=1e-4, mask_ratio=0.65, enhance=0.5, connector='conv1x1')]
stages = [
    dict(epochs=3, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=3, teacher={{_base_.teacher}}, distillers=dict(dfmsd=dict(enhance=1.0))),
]
