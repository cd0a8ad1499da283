# DMKD on the toy data: dual (spatial + channel) attention-guided masked reconstruction. alpha is MGD's 2e-5 scaled
# for the toy feature area (x100) and then raised; half the positions and channels masked. Both chosen on seed 0 of
# the toy study (docs/results.md lists what was tried).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='DMKD', alpha_dmkd=5e-3, mask_ratio=0.5)]
