# The toy DINO teacher of every toy query-distillation config: train it first with
#   python tools/train.py configs/toy/dino_toy_teacher.py
# (its work dir stands for the latest checkpoint saved there).
teacher = dict(config='{{fileDirname}}/../toy/dino_toy_teacher.py',
               checkpoint='work_dirs/dino_toy_teacher')
