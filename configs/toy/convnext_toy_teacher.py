# ConvNeXt toy teacher: RetinaNet on a timm ConvNeXt-Atto backbone (see the model base), 15 epochs like the ResNet toy
# teacher. configs/toy/hetero_convnext_retina_toy.py distils it into the toy ResNet-18 RetinaNet student.
_base_ = [
    '../_base_/models/convnext_toy_teacher.py',
    '../_base_/datasets/toy_coco.py',
    '../_base_/schedules/toy_schedule.py',
    '../_base_/default_runtime.py',
]

train_cfg = dict(max_epochs=15)
