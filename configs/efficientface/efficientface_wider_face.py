# EfficientFace on WIDER Face (one class, 'face'): the EfficientFace model on an EfficientNet-B0 backbone, two
# stacked SBiFPN layers, a 64-channel RFE + attention neck on P3-P7 and a 4-conv RetinaNet head, at a 640x640 input.
# 4.36 M parameters, 6.06 GFLOPs at 640x640 (counted as in configs/_base_/models/efficientface_student.py).
# Data: mmdet's WIDERFaceDataset (VOC-style xml annotations) in mmdet's layout,
#   data/WIDERFace/train.txt, val.txt             image ids <id>, one a line
#   data/WIDERFace/WIDER_train/Annotations/<id>.xml  boxes, size and the image's <folder>
#   data/WIDERFace/WIDER_train/<folder>/<id>.jpg     the image (and the same under WIDER_val for val.txt)
# (converted from the official annotations, e.g. with github.com/sovrasov/wider-face-pascal-voc-annotations), read
# with mmdet's configs/_base_/datasets/wider_face.py (640x640 keep-ratio resize, flips, VOC 11-point mAP).
# ImageNet weights of the backbone: set backbone_checkpoint to a local file of timm's efficientnet_b0 weights (e.g.
# the state dict of timm.create_model('efficientnet_b0', pretrained=True) saved with torch.save); TimmBackbone loads
# it and ignores the classifier keys. None trains the backbone from scratch.
# Schedule: SGD, lr 0.01 for a total batch of 16 (8 images x 2 GPUs; --auto-scale-lr rescales it for other totals),
# linear warm-up, 24 epochs with steps at 16 and 22.
#   tools/dist_train.sh configs/efficientface/efficientface_wider_face.py 2
backbone_checkpoint = None  # e.g. 'checkpoints/efficientnet_b0.pth'

_base_ = [
    '../_base_/models/efficientface_student.py',
    'mmdet::_base_/datasets/wider_face.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(model_name='efficientnet_b0', out_indices=(2, 3, 4), checkpoint=backbone_checkpoint),
    neck=dict(in_channels=[40, 112, 320], out_channels=64, num_repeats=2),
    bbox_head=dict(num_classes=1, in_channels=64, feat_channels=64, stacked_convs=4))

train_dataloader = dict(batch_size=8, num_workers=4)

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=24, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=24, milestones=[16, 22], gamma=0.1),
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))

auto_scale_lr = dict(enable=False, base_batch_size=16)
