# The teacher of every BCCD distillation config: train it first with
#   python tools/train.py configs/bccd/retinanet_bccd_teacher.py
# (its work dir stands for the latest checkpoint saved there).
teacher = dict(config='{{fileDirname}}/../bccd/retinanet_bccd_teacher.py',
               checkpoint='work_dirs/retinanet_bccd_teacher')
