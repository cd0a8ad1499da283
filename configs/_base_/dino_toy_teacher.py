# The toy DINO teacher of every toy query-distillation config: train it first with
#   python tools/train.py configs/toy/dino_toy_teacher.py --cfg-options randomness.seed=0
# (tools/results.py --study detr trains its own, with seed 0).
# (its work dir stands for the latest checkpoint saved there).
teacher = dict(config='{{fileDirname}}/../toy/dino_toy_teacher.py',
               checkpoint='work_dirs/dino_toy_teacher')
