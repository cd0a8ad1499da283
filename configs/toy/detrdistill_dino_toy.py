# DETRDistill on the toy DINO pair: Hungarian-matched soft-label distillation of every student decoder layer (soft
# BCE 1, L1 5, GIoU 2, the authors' Deformable DETR setting) and target-aware feature distillation of the
# ChannelMapper levels (weight 1, top 100 teacher (query, class) pairs). The student's 2 decoder layers learn from
# the teacher's last 2 of 3.
_base_ = ['./dino_toy_student.py', '../_base_/dino_toy_teacher.py']

distill = [dict(type='DETRDistill', layer_map=[1, 2])]
