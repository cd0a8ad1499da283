# LD (CVPR 2022): GFL-R101 -> GFL-R50 on the box distributions, 1x; published 40.1 -> 42.1 mAP (with a
# classification KD of its own, not part of this config).
# Teacher weights: gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth -> checkpoints/gfl_r101_coco.pth
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']

teacher = dict(config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', checkpoint='checkpoints/gfl_r101_coco.pth')
distill = [dict(type='LD', tau=10.0, loss_weight=0.25)]
