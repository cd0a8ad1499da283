# RetinaNet teacher with a timm ConvNeXt backbone for the toy data set, trained from scratch (timm weights are never
# fetched): ConvNeXt-Atto features 1-3, a 64-channel FPN on P3-P7 and a 4-conv 64-channel head; anchors, losses and
# assignment as in the toy student.
# timm_feature_info('convnext_atto', (1, 2, 3)) == ([80, 160, 320], [8, 16, 32]): the FPN takes 80/160/320 channels
# at strides 8/16/32 from start_level=0 and adds P6, P7 by stride-2 convs, the levels of the toy RetinaNet models.
_base_ = ['./retinanet_toy_student.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='TimmBackbone',
        model_name='convnext_atto',
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_eval=False),
    neck=dict(in_channels=[80, 160, 320], out_channels=64, start_level=0),
    bbox_head=dict(in_channels=64, stacked_convs=4, feat_channels=64))
