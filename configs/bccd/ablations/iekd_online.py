# IE-KD ablation: the teacher's auto-encoder trained online by its reconstruction loss while the student distils,
# from the first iteration (phase='joint'), instead of the authors' reconstruction-only first stage and frozen
# auto-encoder.
_base_ = ['../iekd_retina_bccd.py']

stages = []
distill = [dict(type='IEKD', phase='joint', split='natural', exploration='l1', inherit_weight=1.0,
                explore_weight=1.0)]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=False)
