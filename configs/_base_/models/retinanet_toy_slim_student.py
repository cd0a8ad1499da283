# Slim RetinaNet student for the toy data set: the toy student's ResNet-18 at 1/4 width, but a 32-channel FPN with
# three levels only (P3-P5, strides 8-32, no extra convs) and a 32-channel 2-conv head whose anchors use those strides.
# Against the wider P3-P7 toy teachers, distillation needs a connector (32 channels to the teacher's) and uses P3-P5 only.
_base_ = ['./retinanet_toy_student.py']

model = dict(
    neck=dict(out_channels=32, start_level=1, add_extra_convs=False, num_outs=3),
    bbox_head=dict(
        in_channels=32,
        feat_channels=32,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        anchor_generator=dict(strides=[8, 16, 32])))
