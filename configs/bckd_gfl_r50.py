# BCKD (ICCV 2023): GFL-R101 -> GFL-R50, 1x; binary classification and IoU-based localization distillation.
# Loss weights as the authors' config (NovelKDLoss 1, GIoU 4). Published 40.1 -> 43.2 mAP.
# Teacher weights: gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth -> checkpoints/gfl_r101_coco.pth
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']

teacher = dict(config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', checkpoint='checkpoints/gfl_r101_coco.pth')
distill = [dict(type='BCKD', beta=1.0, cls_weight=1.0, loc_weight=4.0)]
