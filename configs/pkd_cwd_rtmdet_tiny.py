# RTMDet-s -> RTMDet-tiny (mmdet: 44.6 and 41.1 mAP), 300 epochs: PKD on the neck outputs (128 -> 96 channels,
# so a 1x1 connector) and CWD on the class-score maps of the head (80 channels on both sides; RTMDet's
# separate-BN head has one rtm_cls conv per level, P3-P5).
# Teacher weights: rtmdet_s_8xb32-300e_coco_20220905_161602-387a891e.pth -> checkpoints/rtmdet_s_coco.pth
_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py']

teacher = dict(config='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py', checkpoint='checkpoints/rtmdet_s_coco.pth')
distill = [
    dict(type='PKD', loss_weight=6.0, connector='conv1x1'),
    dict(type='CWD', tau=1.0, loss_weight=5.0, student_tap=[f'bbox_head.rtm_cls.{i}' for i in range(3)]),
]
