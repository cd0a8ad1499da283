# Toy GFL student: the baseline of the head distillers; trains from scratch on the toy data in a few minutes on two
# CPU cores.
_base_ = [
    '../_base_/models/gfl_toy_student.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]
