# DETRDistill (ICCV 2023) on DINO: the 5-scale Swin-L DINO (57.2 mAP, 12 epochs; mmdet's checkpoint
# https://download.openmmlab.com/mmdetection/v3.0/dino/dino-5scale_swin-l_8xb2-12e_coco/dino-5scale_swin-l_8xb2-12e_coco_20230228_072924-a654145f.pth
# saved as checkpoints/dino-5scale_swin-l_coco.pth) -> the 4-scale ResNet-50 DINO (49.0 alone), 12 epochs.
# The authors' weights (soft BCE 1, L1 5, GIoU 2 on every decoder layer, target-aware features 1). Both have 6 decoder
# layers (paired by index) and 900 queries; the teacher's neck levels 1-4 (strides 8-64) pair with the student's 0-3.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']

teacher = dict(config='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
               checkpoint='checkpoints/dino-5scale_swin-l_coco.pth')
distill = [dict(type='DETRDistill', teacher_levels=[1, 2, 3, 4])]
