# Two-stage toy teacher: Faster R-CNN with a P2-P6 FPN (see the model base). An iteration costs more than the RetinaNet
# toy teacher's (the P2 level, the RoI head), so it trains for 12 epochs. configs/toy/hetero_faster_retina_toy.py
# distils it into the toy RetinaNet student.
_base_ = [
    '../_base_/models/faster_rcnn_toy_teacher.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.05,
        by_epoch=True,
        begin=1,
        end=max_epochs,
        T_max=max_epochs - 1,
        convert_to_iter_based=True),
]
