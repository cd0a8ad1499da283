# mmdet's default runtime, logging every 20 iterations and keeping only the latest checkpoint.
_base_ = ['mmdet::_base_/default_runtime.py']

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
