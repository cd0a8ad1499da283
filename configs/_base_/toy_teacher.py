# The toy teacher of every toy distillation config: train it first with
#   python tools/train.py configs/toy/retinanet_toy_teacher.py
# (its work dir stands for the latest checkpoint saved there).
teacher = dict(config='{{fileDirname}}/../toy/retinanet_toy_teacher.py',
               checkpoint='work_dirs/retinanet_toy_teacher')
