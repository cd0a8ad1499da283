# DFMSD, the headline: RetinaNet-R50 student on COCO, stage-wise from a near teacher (RetinaNet-X101) to a
# heterogeneous two-stage teacher (Cascade Mask R-CNN X101), 12 + 12 epochs.
# Teacher weights (mmdet model zoo):
#   retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth            -> checkpoints/retinanet_x101_coco.pth
#   cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth -> checkpoints/cascade_mask_rcnn_x101_coco.pth
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

retina_x101 = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
                   checkpoint='checkpoints/retinanet_x101_coco.pth')
cascade_x101 = dict(config='mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py',
                    checkpoint='checkpoints/cascade_mask_rcnn_x101_coco.pth')
# The Cascade neck gives P2-P6, the student's P3-P7: distil the shared P3-P6 in both stages.
distill = [dict(type='DFMSD', student_levels=[0, 1, 2, 3])]
stages = [
    dict(epochs=12, teacher=retina_x101, distillers=dict(dfmsd=dict(enhance=0.5))),
    dict(epochs=12, teacher=cascade_x101, distillers=dict(dfmsd=dict(enhance=1.0))),
]
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
