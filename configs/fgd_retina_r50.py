# FGD (CVPR 2022): RetinaNet-X101 -> RetinaNet-R50, 2x; paper: 37.4 -> 40.7 mAP.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
               checkpoint='checkpoints/retinanet_x101_coco.pth')
distill = [dict(type='FGD', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4, gamma_fgd=5e-4, lambda_fgd=5e-6)]
inherit_teacher = True
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
