# Toy DINO teacher (configs/_base_/models/dino_toy_teacher.py: ResNet-18/2, 3 + 3 transformer layers, 1024-wide
# FFNs), the toy DINO student's schedule for 8 epochs.
_base_ = ['./dino_toy_student.py']

model = dict(
    backbone=dict(base_channels=32),
    neck=dict(in_channels=[64, 128, 256]),
    encoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))),
    decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))))
train_cfg = dict(max_epochs=8)
