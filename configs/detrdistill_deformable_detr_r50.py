# DETRDistill (ICCV 2023) on Deformable DETR, the authors' detector: the two-stage, box-refining Deformable DETR R50
# (47.0 mAP; mmdet's checkpoint
# https://download.openmmlab.com/mmdetection/v3.0/deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco/deformable-detr-refine-twostage_r50_16xb2-50e_coco_20221021_184714-acc8a5ff.pth
# saved as checkpoints/deformable-detr-refine-twostage_r50_coco.pth) -> the plain Deformable DETR R50 (44.3 alone),
# 50 epochs. mmdet's zoo has no R101 Deformable DETR (the paper's 44.1 -> 46.6 pair is R101 -> R50). The authors'
# weights: soft BCE 1, L1 5, GIoU 2 on each of the 6 decoder layers, target-aware features 1; 300 queries each.
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py']

teacher = dict(config='mmdet::deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py',
               checkpoint='checkpoints/deformable-detr-refine-twostage_r50_coco.pth')
distill = [dict(type='DETRDistill')]
