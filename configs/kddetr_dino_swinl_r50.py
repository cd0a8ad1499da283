# KD-DETR (CVPR 2024) on DINO: the 5-scale Swin-L DINO (57.2 mAP; checkpoint as in detrdistill_dino_swinl_r50.py)
# -> the 4-scale ResNet-50 DINO (49.0 alone), 12 epochs. The authors' setting: 300 general random points and the
# teacher's own queries' reference boxes, KL at T = 10 (x T^2), L1 5, GIoU 2, every student layer against the
# teacher's last.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']

teacher = dict(config='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
               checkpoint='checkpoints/dino-5scale_swin-l_coco.pth')
distill = [dict(type='KDDETR')]
