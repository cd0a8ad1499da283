# MGD on BCCD with its published setting (alpha 2e-5, lambda 0.65); loss_weight='auto' carries the published weight
# over to BCCD's feature area (kdtools.calibration).
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='MGD', alpha_mgd=2e-5, lambda_mgd=0.65, loss_weight='auto')]
