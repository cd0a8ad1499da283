# DFMSD, heterogeneous pair on COCO: Faster R-CNN R101 teacher (two-stage, FPN P2-P6) -> RetinaNet-R50 student
# (one-stage, FPN P3-P7), 2x schedule.
# Teacher weights (mmdet metafile: faster-rcnn_r101_fpn_2x_coco, box AP 39.8):
#   https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/
#   faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth  -> checkpoints/faster_rcnn_r101_coco.pth
# Both necks have 256 channels, so no connector is needed. Levels (indices into each neck's outputs; matching by
# stride gives the same): p3 student #0 - teacher #1, p4 #1 - #2, p5 #2 - #3, p6 #3 - #4. The teacher runs up to its
# neck only.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

teacher = dict(config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
               checkpoint='checkpoints/faster_rcnn_r101_coco.pth')
distill = [dict(type='DFMSD', enhance=1.0, student_levels=[0, 1, 2, 3], teacher_levels=[1, 2, 3, 4])]
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
