# EfficientFace (Wang et al., arXiv 2302.11816) as a lightweight RetinaNet-style student, trained from scratch (timm
# weights are never fetched): a timm TinyNet-E backbone (EfficientNet scaled down in resolution, depth and width),
# the EfficientFace neck (SBiFPN fusion, an RFE and an attention module per output, see
# kdtools/necks/efficientface.py) giving 64-channel P3-P7, and the toy student's 64-channel 2-conv GroupNorm head,
# anchors, assigner and losses.
# timm_feature_info('tinynet_e', (2, 3, 4)) == ([24, 56, 160], [8, 16, 32]): the neck takes 24/56/160 channels at
# strides 8/16/32 and adds P6, P7 by stride-2 convs; its fusion nodes use depthwise-separable 3x3 convs.
# Size with BCCD's 3 classes at a 256x192 input (mmengine.analysis.get_model_complexity_info on backbone + neck +
# head, fvcore-style counting: one multiply-add is one FLOP; convs and matmuls only, norms and activations not):
#   EfficientFace (configs/bccd/efficientface_bccd.py)   1.004 M parameters, 0.276 GFLOPs
#     (backbone 0.555 M, neck 0.289 M, head 0.160 M)
#   RetinaNet student (configs/bccd/retinanet_bccd_student.py)   1.098 M parameters, 0.340 GFLOPs
#     (backbone 0.702 M, FPN 0.236 M, head 0.160 M)
# With ImageNet weights of tinynet_e, set model.backbone.checkpoint='path/to/tinynet_e.pth' (TimmBackbone loads
# a local file; the classifier keys are ignored).
_base_ = ['./retinanet_toy_student.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='TimmBackbone',
        model_name='tinynet_e',
        out_indices=(2, 3, 4),
        frozen_stages=-1,
        norm_eval=False,
        checkpoint=None),
    neck=dict(
        _delete_=True,
        type='EfficientFaceNeck',
        in_channels=[24, 56, 160],
        out_channels=64,
        num_outs=5,
        start_level=0,
        fusion='sbifpn',
        bottom_up='parallel',
        rfe=True,
        attention=True,
        num_repeats=1,
        rfe_cfg=dict(kernels=(3, 5), mode='split'),
        attention_cfg=dict(reduction=8, spatial_kernel=7),
        depthwise=True,
        norm_cfg=dict(type='BN', requires_grad=True)),
    bbox_head=dict(in_channels=64, feat_channels=64))
