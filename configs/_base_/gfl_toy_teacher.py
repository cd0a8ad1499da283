# The toy GFL teacher of every toy head-distillation config: train it first with
#   python tools/train.py configs/toy/gfl_toy_teacher.py
# (its work dir stands for the latest checkpoint saved there).
teacher = dict(config='{{fileDirname}}/../toy/gfl_toy_teacher.py',
               checkpoint='work_dirs/gfl_toy_teacher')
