# RND-style predictor on BCCD, with MGD (published setting, weight carried over by loss_weight='auto') weighted by
# RND's novelty map.
_base_ = ['./retinanet_bccd_student.py', '../_base_/bccd_teacher.py']

distill = [
    dict(type='RND', loss_weight=1.0),
    dict(type='MGD', alpha_mgd=2e-5, lambda_mgd=0.65, spatial_weight='rnd_novelty', loss_weight='auto'),
]
