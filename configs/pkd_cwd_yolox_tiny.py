# YOLOX-s -> YOLOX-tiny (mmdet: 40.5 and 32.0 mAP), 300 epochs: PKD on the neck outputs (128 -> 96 channels, so
# a 1x1 connector) and CWD on the class-score maps of the head (80 channels on both sides; one conv per level,
# P3-P5).
# Teacher weights: yolox_s_8x8_300e_coco_20211121_095711-4592a793.pth -> checkpoints/yolox_s_coco.pth
_base_ = ['mmdet::yolox/yolox_tiny_8xb8-300e_coco.py']

teacher = dict(config='mmdet::yolox/yolox_s_8xb8-300e_coco.py', checkpoint='checkpoints/yolox_s_coco.pth')
distill = [
    dict(type='PKD', loss_weight=6.0, connector='conv1x1'),
    dict(type='CWD', tau=1.0, loss_weight=5.0, student_tap=[f'bbox_head.multi_level_conv_cls.{i}' for i in range(3)]),
]
