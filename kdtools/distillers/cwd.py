"""CWD: channel-wise distillation.

Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021. Follows mmrazor's
``ChannelWiseDivergence``.

Each channel becomes a distribution over its H*W positions, phi(y)_c = softmax_{h,w}(y_c / tau), and::

    L = w * tau^2 / (N * C) * sum_{n,c} KL(phi(y^T)_{n,c} || phi(y^S)_{n,c})

Published defaults: tau = 1, w = 10, FPN levels 0-4 (GFL-R101 -> GFL-R50). Reduction: summed KL divided by
N*C per level, summed over levels. Channels must match unless ``connector='conv1x1'``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from kdtools.distillers.base import BaseDistiller, DistillBatch
from kdtools.registry import DISTILLERS


@DISTILLERS.register_module()
class CWD(BaseDistiller):
    """Channel-wise distillation: KL between per-channel spatial softmaxes, teacher to student.

    Args:
        tau: softmax temperature; the loss is multiplied by tau^2.
        **kwargs: :class:`BaseDistiller` arguments; ``loss_weight`` defaults to 10.
    """

    def __init__(self, tau: float = 1.0, **kwargs) -> None:
        kwargs.setdefault("loss_weight", 10.0)
        super().__init__(**kwargs)
        self.tau = float(tau)

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor:
        n, c = student.shape[:2]
        log_p_s = torch.log_softmax(student.flatten(2) / self.tau, dim=2)
        log_p_t = torch.log_softmax(teacher.flatten(2) / self.tau, dim=2)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
        return kl * self.tau**2 / (n * c)
