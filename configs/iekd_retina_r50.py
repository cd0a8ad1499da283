# IE-KD (CVPR 2021): RetinaNet-X101 -> RetinaNet-R50 on FPN outputs P3-P7, 2x schedule, the authors' setting
# (natural channel halves, inheritance and exploration weights 1, negative factor-transfer exploration) and
# two-stage schedule: epoch 1 trains the teacher's auto-encoders by reconstruction only, epochs 2-24 distil with
# them frozen. The paper's released configs are CIFAR only: this pair is kdtools' COCO setting for the method.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
               checkpoint='checkpoints/retinanet_x101_coco.pth')
distill = [dict(type='IEKD', split='natural', exploration='l1', inherit_weight=1.0, explore_weight=1.0)]
stages = [
    dict(epochs=1, teacher=teacher, distillers=dict(iekd=dict(phase='autoencoder'))),
    dict(epochs=23, teacher=teacher, distillers=dict(iekd=dict(phase='distill'))),
]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
