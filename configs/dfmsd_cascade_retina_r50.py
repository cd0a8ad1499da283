# DFMSD, heterogeneous pair on COCO: Cascade Mask R-CNN X101-64x4d teacher (two-stage, FPN P2-P6) -> RetinaNet-R50
# student (one-stage, FPN P3-P7), 2x schedule, one teacher for all 24 epochs (configs/dfmsd_retina_r50.py adds the
# RetinaNet-X101 stage before it).
# Teacher weights (mmdet metafile: cascade-mask-rcnn_x101-64x4d_fpn_20e_coco, box AP 45.6):
#   https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco/
#   cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth  -> checkpoints/cascade_mask_rcnn_x101_coco.pth
# Both necks have 256 channels, so no connector is needed. Levels (indices into each neck's outputs; matching by
# stride gives the same): p3 student #0 - teacher #1, p4 #1 - #2, p5 #2 - #3, p6 #3 - #4. The teacher runs up to its
# neck only; its RoI and mask heads are never evaluated.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py',
               checkpoint='checkpoints/cascade_mask_rcnn_x101_coco.pth')
distill = [dict(type='DFMSD', enhance=1.0, student_levels=[0, 1, 2, 3], teacher_levels=[1, 2, 3, 4])]
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
