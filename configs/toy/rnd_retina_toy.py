# RND-style predictor on the toy data, with MGD weighted by RND's novelty map (kdtools' own design).
_base_ = ['./retinanet_toy_student.py', '../_base_/toy_teacher.py']

distill = [
    dict(type='RND', loss_weight=1.0),
    dict(type='MGD', alpha_mgd=2e-3, lambda_mgd=0.65, spatial_weight='rnd_novelty'),
]
