# IE-KD (CVPR 2021): RetinaNet-X101 -> RetinaNet-R50 on FPN outputs P3-P7, 2x schedule, the authors' losses and
# weights (natural channel halves, inheritance and exploration weights 1, negative factor-transfer exploration), the
# teacher's auto-encoders trained online. The authors' two-stage form (reconstruction only first, then frozen) is
# the `stages` of configs/bccd/ablations/iekd_two_stage.py. The paper's released configs are CIFAR only: this pair
# is kdtools' COCO setting for the method.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
               checkpoint='checkpoints/retinanet_x101_coco.pth')
distill = [dict(type='IEKD', phase='joint', split='natural', exploration='l1', inherit_weight=1.0,
                explore_weight=1.0)]
