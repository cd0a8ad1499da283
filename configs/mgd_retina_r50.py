# MGD (ECCV 2022): RetinaNet-X101 -> RetinaNet-R50, 2x; paper: 37.4 -> 41.0 mAP.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
               checkpoint='checkpoints/retinanet_x101_coco.pth')
distill = [dict(type='MGD', alpha_mgd=2e-5, lambda_mgd=0.65)]
inherit_teacher = True
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
