# CrossKD + PKD: GFL-R101 -> GFL-R50, 1x; the head distiller with a feature distiller on the FPN outputs, as the
# CrossKD paper combines them.
# Teacher weights: gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth -> checkpoints/gfl_r101_coco.pth
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']

teacher = dict(config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', checkpoint='checkpoints/gfl_r101_coco.pth')
distill = [
    dict(type='CrossKD', reused_layer=3, beta=1.0, cls_weight=1.0, box_loss='kl', box_weight=4.0, tau=1.0),
    dict(type='PKD', loss_weight=6.0),
]
