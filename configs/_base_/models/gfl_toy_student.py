# Small, fast GFL for the toy data set, trained from scratch: the toy RetinaNet student's backbone and 64-channel
# FPN on P3-P7, and a 2-conv GFL head with GroupNorm: quality focal loss on the classes, box sides as
# distributions over 9 bins (reg_max=8: up to 8 strides from the anchor centre, 64-1024 px over strides 8-128),
# distribution focal loss and GIoU, ATSS assignment.
# One anchor per location, 4x its level's stride (32-512 px; GFL's COCO setting is 8x, too large for toy objects).
_base_ = ['./retinanet_toy_student.py']

model = dict(
    type='GFL',
    bbox_head=dict(
        _delete_=True,
        type='GFLHead',
        num_classes={{_base_.num_classes}},
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=4,
            scales_per_octave=1,
            strides=[8, 16, 32, 64, 128]),
        loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
        reg_max=8,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        _delete_=True,
        assigner=dict(type='ATSSAssigner', topk=9),
        allowed_border=-1,
        pos_weight=-1,
        debug=False))
