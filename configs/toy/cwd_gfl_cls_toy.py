# CWD pointed at head outputs on the toy GFL pair: gfl_cls is shared by the levels and runs once per level, so the
# tap gives one record per level (P3-P7 class-score maps, 5 channels each).
_base_ = ['./gfl_toy_student.py', '../_base_/gfl_toy_teacher.py']

distill = [dict(type='CWD', tau=1.0, loss_weight=5.0, student_tap='bbox_head.gfl_cls')]
