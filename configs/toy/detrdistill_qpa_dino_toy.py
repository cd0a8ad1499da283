# DETRDistill with query-prior assignment on the toy DINO pair: configs/toy/detrdistill_dino_toy.py plus the
# teacher's 100 matching queries decoded by the student's decoder as a group of their own and trained on the
# ground truth with the student head's matching and losses (weight 1), as the authors' published configuration
# (use_teacher_group=True) does. `python tools/results.py --study detr --methods detrdistill_qpa` compares it.
_base_ = ['./detrdistill_dino_toy.py']

distill = [dict(type='DETRDistill', layer_map=[1, 2], query_prior_weight=1.0)]
