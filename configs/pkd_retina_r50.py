# PKD (NeurIPS 2022): RetinaNet-X101 -> RetinaNet-R50 on FPN outputs P3-P6, 2x; paper: 37.4 -> 40.8 mAP.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
               checkpoint='checkpoints/retinanet_x101_coco.pth')
distill = [dict(type='PKD', loss_weight=10.0, student_levels=[0, 1, 2, 3])]
