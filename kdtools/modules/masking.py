"""Attention-guided mask selection, shared by DMKD and DFMSD.

Given non-negative selection scores ``s`` of shape N x K (K positions or channels per image) and a mask
ratio ``r``, each rule picks the entries to mask (hide from the student), independently for every image:

    'topk'       the k = round(r * K) entries with the highest score (ties broken by ``torch.topk``);
    'bottomk'    the k entries with the lowest score (the ones the teacher attends to least);
    'threshold'  the entries whose score exceeds the per-image (1 - r)-quantile of the scores, so about
                 r * K entries (fewer when scores tie at the quantile);
    'sample'     k = round(r * K) entries drawn without replacement with probability proportional to the
                 score (successive draws renormalise over the entries not yet drawn);
    'random'     each entry independently with probability r, whatever its score (MGD's mask).

Masking the entries the teacher attends to most is kdtools' reading of DMKD: the student must reconstruct
what matters from what is left. The keep mask is M = 1 - masked, applied as F^S * M.

Object-aware scores (DFMSD's masking enhancement, kdtools' reading):

    s = A^S_t * (1 + e * 1[inside a GT box])

so cells inside boxes count (1 + e) times more when the masked set is chosen; e = 0 gives the plain
attention.
"""
from __future__ import annotations

import torch
from torch import Tensor

MASK_RULES = ("topk", "bottomk", "threshold", "sample", "random")


def masked_count(ratio: float, total: int) -> int:
    """k = round(ratio * total): how many of ``total`` entries the 'topk' and 'sample' rules mask."""
    return int(round(ratio * total))


def select_masked(scores: Tensor, ratio: float, rule: str = "topk") -> Tensor:
    """Boolean N x K tensor, True where an entry is masked, chosen per row from N x K scores by ``rule``."""
    if rule not in MASK_RULES:
        raise ValueError(f"Unknown mask rule {rule!r}; use one of {MASK_RULES}.")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"The mask ratio must lie in [0, 1]; got {ratio}.")
    scores = scores.detach().float()
    if rule == "threshold":
        threshold = torch.quantile(scores, 1.0 - ratio, dim=1, keepdim=True)
        return scores > threshold
    if rule == "random":
        return torch.rand_like(scores) > 1.0 - ratio
    k = masked_count(ratio, scores.shape[1])
    masked = torch.zeros_like(scores, dtype=torch.bool)
    if k == 0:
        return masked
    if rule in ("topk", "bottomk"):
        index = scores.topk(k, dim=1, largest=rule == "topk").indices
    else:
        # A floor keeps every entry drawable, so k draws always exist even if some scores underflow to 0.
        index = torch.multinomial(scores.clamp_min(torch.finfo(scores.dtype).tiny), k, replacement=False)
    return masked.scatter(1, index, True)


def keep_mask(scores: Tensor, ratio: float, rule: str = "topk") -> Tensor:
    """Float N x K mask M: 0 where ``select_masked`` masks an entry, 1 elsewhere."""
    return (~select_masked(scores, ratio, rule)).float()


def object_aware_scores(attention: Tensor, inside_boxes: Tensor, enhance: float) -> Tensor:
    """DFMSD selection scores A * (1 + enhance * inside), all N x H x W."""
    return attention * (1.0 + enhance * inside_boxes)
