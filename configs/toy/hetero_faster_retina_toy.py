# Heterogeneous pair 1, two-stage teacher -> one-stage student: the Faster R-CNN toy teacher (64-ch FPN, P2-P6)
# distilled into the toy RetinaNet student (64-ch FPN, P3-P7) with DFMSD. Train the teacher first with
#   python tools/train.py configs/toy/faster_rcnn_toy_teacher.py
# Level indices are positions in each neck's outputs. Matching by stride would pick the same four levels; they are
# written out here (teacher index = student index + 1):
#   name  student           teacher
#   p3    #0  64 x 16 x 16  #1  64 x 16 x 16
#   p4    #1  64 x  8 x  8  #2  64 x  8 x  8
#   p5    #2  64 x  4 x  4  #3  64 x  4 x  4
#   p6    #3  64 x  2 x  2  #4  64 x  2 x  2
# (sizes for 128-px inputs). The student's P7 and the teacher's P2 have no partner and are not distilled. Matched
# levels have equal channels and sizes, so no connector is needed.
_base_ = ['./retinanet_toy_student.py']

teacher = dict(config='{{fileDirname}}/faster_rcnn_toy_teacher.py', checkpoint='work_dirs/faster_rcnn_toy_teacher')
distill = [
    dict(
        type='DFMSD',
        alpha_dfmsd=1e-4,
        mask_ratio=0.65,
        enhance=0.5,
        student_levels=[0, 1, 2, 3],
        teacher_levels=[1, 2, 3, 4])
]
stages = [
    dict(epochs=3, teacher=teacher, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=3, teacher=teacher, distillers=dict(dfmsd=dict(enhance=1.0))),
]
