"""Attention maps shared by FGD, DMKD and DFMSD.

Spatial attention  A^S = H*W * softmax_{h,w}( mean_c |F| / T )   -> N x H x W
Channel attention  A^C = C   * softmax_{c}  ( mean_{h,w} |F| / T ) -> N x C

Both average to 1, so a weight of 1 everywhere is the "no attention" case.
"""
from __future__ import annotations

import torch
from torch import Tensor


def spatial_attention(feature: Tensor, temperature: float) -> Tensor:
    """H*W-scaled softmax over positions of the channel-mean absolute activation (N x H x W)."""
    n, _, h, w = feature.shape
    logits = feature.abs().mean(dim=1).reshape(n, h * w) / temperature
    return (h * w * torch.softmax(logits, dim=1)).reshape(n, h, w)


def channel_attention(feature: Tensor, temperature: float) -> Tensor:
    """C-scaled softmax over channels of the spatially averaged absolute activation (N x C)."""
    c = feature.shape[1]
    logits = feature.abs().mean(dim=(2, 3)) / temperature
    return c * torch.softmax(logits, dim=1)
