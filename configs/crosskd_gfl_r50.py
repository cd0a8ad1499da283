# CrossKD (CVPR 2024): GFL-R101 -> GFL-R50, 1x; the student's head features after conv 3 of 4 go through the
# teacher's 4th conv and predictors; the box term is the KL of the box distributions (summed over bins, T = 1),
# weight 4, as the authors' config. Published 40.2 -> 43.7 mAP.
# Teacher weights: gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth -> checkpoints/gfl_r101_coco.pth
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']

teacher = dict(config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', checkpoint='checkpoints/gfl_r101_coco.pth')
distill = [dict(type='CrossKD', reused_layer=3, beta=1.0, cls_weight=1.0, box_loss='kl', box_weight=4.0, tau=1.0)]
