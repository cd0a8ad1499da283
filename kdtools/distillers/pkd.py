"""PKD: Pearson correlation distillation.

Cao et al., "PKD: General Distillation Framework for Object Detectors via Pearson Correlation Coefficient",
NeurIPS 2022. Follows mmrazor's ``PKDLoss``.

Each channel of both sides is standardised over (N, H, W), with the unbiased standard deviation::

    F_hat = (F - mu_c) / (sigma_c + 1e-6)
    L     = w * mean((F_hat^S - F_hat^T)^2) / 2

With M = N*H*W values per channel, mean(F_hat^2) = (M - 1) / M up to the 1e-6, so
L = w * (M - 1) / M * (1 - mean_c r_c), r_c the Pearson correlation of channel c. The loss ignores the
features' per-channel scale and offset, which is why it needs no connector for magnitude gaps.

A level with one value per channel (batch 1, 1 x 1 map) has no unbiased sigma: kdtools takes sigma = 0 there,
so that level adds no loss instead of NaN.

Published defaults: w = 10 (RetinaNet-X101 -> RetinaNet-R50, FPN outputs 0-3); 6 for a Mask R-CNN-Swin teacher.
Reduction: mean per level, summed over levels. The student is resized to the teacher's H, W when they differ
(``connector='resize'`` by default); channels must match unless ``connector='conv1x1'``.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from kdtools.distillers.base import BaseDistiller, DistillBatch
from kdtools.registry import DISTILLERS


def channel_std_mean(feature: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel (sigma_c, mu_c) over (N, H, W), sigma unbiased; sigma_c = 0 for a single value per channel
    (batch 1 on a 1 x 1 level), whose unbiased estimate is undefined: its standardised values are 0, so such a
    level contributes no loss (with a warning, once)."""
    values = feature.numel() // max(feature.shape[1], 1)
    if values == 1:
        warnings.warn("A feature level holds one value per channel (batch 1, 1 x 1 map): its standard deviation is "
                      "taken as 0, so the level's standardised features are 0 and it adds no loss.", stacklevel=2)
    return torch.std_mean(feature, dim=(0, 2, 3), keepdim=True, correction=1 if values > 1 else 0)


def standardise_channels(feature: Tensor, eps: float = 1e-6) -> Tensor:
    """(F - mu_c) / (sigma_c + eps), statistics of each channel over (N, H, W) (:func:`channel_std_mean`)."""
    std, mean = channel_std_mean(feature)
    return (feature - mean) / (std + eps)


@DISTILLERS.register_module()
class PKD(BaseDistiller):
    """Pearson correlation distillation: MSE between per-channel standardised features, halved.

    Args:
        **kwargs: :class:`BaseDistiller` arguments; ``loss_weight`` defaults to 10, ``connector`` to 'resize'.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("loss_weight", 10.0)
        kwargs.setdefault("connector", "resize")
        super().__init__(**kwargs)

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor:
        return F.mse_loss(standardise_channels(student), standardise_channels(teacher)) / 2
