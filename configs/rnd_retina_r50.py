# RND-style feature predictor (kdtools' own design), combined with MGD: RND's per-location novelty map
# (where the student cannot yet predict the teacher's random projection) weights MGD's reconstruction error.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
               checkpoint='checkpoints/retinanet_x101_coco.pth')
distill = [
    dict(type='RND', loss_weight=1.0),
    dict(type='MGD', alpha_mgd=2e-5, lambda_mgd=0.65, spatial_weight='rnd_novelty'),
]
inherit_teacher = True
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
