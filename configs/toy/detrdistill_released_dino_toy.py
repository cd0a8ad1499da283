# DETRDistill as the authors' released code runs it, on the toy DINO pair: configs/toy/detrdistill_qpa_dino_toy.py
# (the paper's two terms plus the teacher group) plus the query contrast of the released code's MoCoCLHead
# (weight 0.2, 512-wide projections, temperature 0.07) on every matched layer pair.
# `python tools/results.py --study detr --methods detrdistill_released` compares it.
_base_ = ['./detrdistill_dino_toy.py']

distill = [dict(type='DETRDistill', layer_map=[1, 2], query_prior_weight=1.0, contrastive_weight=0.2)]
