# PKD on DINO's neck (the ChannelMapper's 256-channel levels): the 5-scale Swin-L DINO (checkpoint as in
# detrdistill_dino_swinl_r50.py) -> the 4-scale ResNet-50 DINO, its levels 1-4 (strides 8-64) against the student's
# 0-3, PKD's published weight. The feature baseline of the query distillers.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py']

teacher = dict(config='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
               checkpoint='checkpoints/dino-5scale_swin-l_coco.pth')
distill = [dict(type='PKD', loss_weight=10.0, student_levels=[0, 1, 2, 3], teacher_levels=[1, 2, 3, 4])]
