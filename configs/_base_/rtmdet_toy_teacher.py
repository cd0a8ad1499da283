# The toy RTMDet teacher of the toy RTMDet distillation configs: train it first with
#   python tools/train.py configs/toy/rtmdet_toy_teacher.py
teacher = dict(config='{{fileDirname}}/../toy/rtmdet_toy_teacher.py',
               checkpoint='work_dirs/rtmdet_toy_teacher')
