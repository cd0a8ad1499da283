# FGD on BCCD with its published RetinaNet setting (T 0.5, alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6);
# loss_weight='auto' carries the published weights over to BCCD's feature area (kdtools.calibration).
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='FGD', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4, gamma_fgd=5e-4, lambda_fgd=5e-6,
                loss_weight='auto')]
