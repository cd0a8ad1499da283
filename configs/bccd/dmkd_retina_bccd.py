# DMKD on BCCD: dual (spatial + channel) attention-guided masked reconstruction at MGD's alpha, the weight carried
# over to BCCD's feature area by loss_weight='auto' (kdtools.calibration).
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65, loss_weight='auto')]
