# Toy RTMDet student (see configs/_base_/models/rtmdet_toy_student.py).
_base_ = [
    '../_base_/models/rtmdet_toy_student.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

# The head shares its convs across levels: each parameter goes into one optimizer group.
optim_wrapper = dict(paramwise_cfg=dict(bypass_duplicate=True))
