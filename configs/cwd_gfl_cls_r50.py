# CWD on head outputs (mmrazor): GFL-R101 -> GFL-R50, 1x, on the class-score maps of P3-P7. gfl_cls is shared
# by the levels and runs once per level: the tap gives one record per level. mmrazor: 40.2 -> 41.9 mAP.
# Teacher weights: gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth -> checkpoints/gfl_r101_coco.pth
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']

teacher = dict(config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', checkpoint='checkpoints/gfl_r101_coco.pth')
distill = [dict(type='CWD', tau=1.0, loss_weight=5.0, student_tap='bbox_head.gfl_cls')]
