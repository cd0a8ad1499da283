# FGD on the toy data; the area-summed terms (attention, global) are scaled up for the small feature maps.
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [dict(type='FGD', temp=0.5, alpha_fgd=2e-3, beta_fgd=1e-3, gamma_fgd=1e-3, lambda_fgd=5e-4,
               )]
