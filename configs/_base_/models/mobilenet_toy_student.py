# Lightweight RetinaNet student in the spirit of mobile face detectors, trained from scratch (timm weights are never
# fetched): a timm MobileNetV3-Small backbone, a slim 48-channel FPN (P3-P7) and a 48-channel 2-conv GroupNorm head.
# timm_feature_info('mobilenetv3_small_100', (2, 3, 4)) == ([24, 48, 576], [8, 16, 32]): the FPN takes 24/48/576
# channels at strides 8/16/32 from start_level=0 and adds P6, P7 by stride-2 convs; anchors as in the toy student.
_base_ = ['./retinanet_toy_student.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='TimmBackbone',
        model_name='mobilenetv3_small_100',
        out_indices=(2, 3, 4),
        frozen_stages=-1,
        norm_eval=False),
    neck=dict(in_channels=[24, 48, 576], out_channels=48, start_level=0),
    bbox_head=dict(in_channels=48, feat_channels=48))
