# FGD on BCCD with its published RetinaNet setting (T 0.5, alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6). Its main
# terms are normalised per box (foreground) and per image (background), so the published weights carry over to
# BCCD's feature area as they are.
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='FGD', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4, gamma_fgd=5e-4, lambda_fgd=5e-6)]
