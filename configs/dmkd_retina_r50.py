# DMKD: RetinaNet-X101 teacher -> RetinaNet-R50 student on COCO, 2x schedule (MGD's setting, which DMKD builds on).
# Teacher weights: https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_x101_64x4d_fpn_1x_coco/
#                  retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth  -> checkpoints/retinanet_x101_coco.pth
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
               checkpoint='checkpoints/retinanet_x101_coco.pth')
distill = [dict(type='DMKD', alpha_dmkd=2e-5, mask_ratio=0.65)]   # P3-P7, teacher-attention-guided dual masks
inherit_teacher = True                                            # student neck + head start from the teacher's
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
