# Two-stage toy teacher: Faster R-CNN with a P2-P6 FPN (see the model base). An iteration costs more than the RetinaNet
# toy teacher's (the P2 level, the RoI head), so it trains for 12 epochs. configs/toy/hetero_faster_retina_toy.py
# distils it into the toy RetinaNet student.
_base_ = [
    '../_base_/models/faster_rcnn_toy_teacher.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

train_cfg = dict(max_epochs=12)
