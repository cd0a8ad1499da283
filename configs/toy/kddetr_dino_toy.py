# KD-DETR on the toy DINO pair: 300 general random points and the teacher's own queries' reference boxes as specific
# points, decoded by both models in separate passes; KL at T = 10 (x T^2), L1 5 and GIoU 2 weighted by the teacher's
# confidence, every student decoder layer against the teacher's last (the authors' setting).
_base_ = ['./dino_toy_student.py', '../_base_/dino_toy_teacher.py']

distill = [dict(type='KDDETR')]
