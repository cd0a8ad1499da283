# Synthetic toy COCO data set (see kdtools.datasets.toy_coco): 800 train / 200 val images of 128x128 px.
# Generate it first with `python tools/make_toy_data.py` (kdtools' training entry point does so on its own when the
# data root is missing). To use another root, override `data_root` of the dataloaders' datasets and of `toy_data`;
# the evaluator builds its ground truth from the val dataset, so it needs no path.
dataset_type = 'CocoDataset'
data_root = 'data/toy_coco/'
# kdtools' tools write the toy data set there first when it is missing.
toy_data = dict(data_root=data_root)
img_size = 128
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'cross', 'ring'),
    palette=[(220, 20, 60), (0, 128, 255), (0, 200, 0), (255, 160, 0), (160, 0, 255)])
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'instances')),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='CocoMetric', ann_file=None, metric='bbox', format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator
