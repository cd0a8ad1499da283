# DMKD on the toy data: dual (spatial + channel) attention-guided masked reconstruction, alpha scaled like MGD's.
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-3, mask_ratio=0.65)]
