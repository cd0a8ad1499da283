# DFMSD's stage-wise setting on the toy data, as configs/dfmsd_retina_r50.py on COCO: the toy RetinaNet student learns
# first from a RetinaNet teacher (the ConvNeXt toy teacher, P3-P7), then from the two-stage Faster R-CNN toy teacher
# (P2-P6). Train both teachers first (configs/toy/convnext_toy_teacher.py, configs/toy/faster_rcnn_toy_teacher.py).
# Only the student side is fixed: student_levels=[0, 1, 2, 3] (P3-P6). Each teacher's levels are matched by stride,
# so P3 is teacher level #0 of the RetinaNet teacher and #1 of the Faster R-CNN teacher; fixed teacher_levels would
# pair the wrong strides for one of the two. Every teacher of a run must give the same shapes on the matched levels:
# both have 64-ch FPNs, like the student, so no connector is needed.
_base_ = ['./retinanet_toy_student.py']

convnext_teacher = dict(config='{{fileDirname}}/convnext_toy_teacher.py', checkpoint='work_dirs/convnext_toy_teacher')
faster_teacher = dict(
    config='{{fileDirname}}/faster_rcnn_toy_teacher.py', checkpoint='work_dirs/faster_rcnn_toy_teacher')
distill = [dict(type='DFMSD', alpha_dfmsd=1e-4, mask_ratio=0.65, enhance=0.5, student_levels=[0, 1, 2, 3])]
stages = [
    dict(epochs=3, teacher=convnext_teacher, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=3, teacher=faster_teacher, distillers=dict(dfmsd=dict(enhance=1.0))),
]
