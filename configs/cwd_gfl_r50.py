# CWD (ICCV 2021): GFL-R101 -> GFL-R50 on FPN outputs P3-P7, 1x. (mmrazor's 40.2 -> 41.9 mAP is CWD on the class-score
# maps: configs/cwd_gfl_cls_r50.py.)
# Teacher weights: gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth -> checkpoints/gfl_r101_coco.pth
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']

teacher = dict(config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', checkpoint='checkpoints/gfl_r101_coco.pth')
distill = [dict(type='CWD', tau=1.0, loss_weight=10.0)]
