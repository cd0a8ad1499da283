"""FGD: focal and global distillation.

Yang et al., "Focal and Global Knowledge Distillation for Detectors", CVPR 2022. Follows the authors' code
(yzd-v/FGD, ``mmdet/distillation/losses/fgd.py``), including its reductions.

With the teacher's attentions A^S_t (N x H x W) and A^C_t (N x C) at temperature T (``kdtools.modules.attention``),
the GT masks Mask_fg (inverse box area, smallest box wins) and Mask_bg (1 off the boxes, normalised to sum 1
per image) from ``kdtools.modules.gt_masks``, and sums over all elements::

    L_fg   = sum Mask_fg * A^S_t * A^C_t * (F^T - F^S)^2 / N
    L_bg   = sum Mask_bg * A^S_t * A^C_t * (F^T - F^S)^2 / N
    L_at   = sum |A^C_s - A^C_t| / N + sum |A^S_s - A^S_t| / N
    L_rela = sum (R_s(F^S) - R_t(F^T))^2 / N
    L      = alpha * L_fg + beta * L_bg + gamma * L_at + lambda * L_rela

R is a GcBlock: R(F) = F + W2(ReLU(LN(W1(sum_j softmax_j(Wk F)_j F_j)))), with Wk: C -> 1, W1: C -> C/2,
LayerNorm over (C/2, 1, 1), W2: C/2 -> C. Each level has one block for the student side and one for the
teacher side, both trained with the student; Wk is Kaiming-initialised (fan-in) and W2 zero-initialised, so
R(F) = F at the start. (The reference code writes the masks and attentions as square roots multiplying both
features; the squared difference is the same.)

Published defaults (RetinaNet / GFL students): T = 0.5, alpha = 1e-3, beta = 5e-4, gamma = 5e-4,
lambda = 5e-6. FCOS: T = 0.8 with 1.6e-3 / 8e-4 / 8e-4 / 8e-6. Two-stage: T = 0.5 with
5e-5 / 2.5e-5 / 5e-5 / 5e-7. Reduction: sum / N per level, summed over levels; the four terms are reported
separately as ``loss_fgd_{fg,bg,at,rela}_<level>``. Channels must match unless ``connector='conv1x1'``
(the reference's 1x1 ``align`` conv).

kdtools reading: boxes are mapped to feature cells against the padded batch input rather than each image's
own shape (see ``kdtools.modules.gt_masks``); for a batch of equally sized images the two agree.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.modules.attention import channel_attention, spatial_attention
from kdtools.registry import DISTILLERS


class GlobalContext(nn.Module):
    """FGD's GcBlock: R(F) = F + W2(ReLU(LN(W1(context(F))))), context an attention-pooled C-vector."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.context_mask = nn.Conv2d(channels, 1, kernel_size=1)
        self.channel_add = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=1),
            nn.LayerNorm([channels // 2, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // 2, channels, kernel_size=1),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming (fan-in) context conv, zero last conv: the block starts as the identity."""
        nn.init.kaiming_normal_(self.context_mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.context_mask.bias)
        nn.init.zeros_(self.channel_add[-1].weight)
        nn.init.zeros_(self.channel_add[-1].bias)

    def forward(self, feature: Tensor) -> Tensor:
        n, c = feature.shape[:2]
        weights = torch.softmax(self.context_mask(feature).flatten(2), dim=2)  # N x 1 x HW
        context = torch.bmm(feature.flatten(2), weights.transpose(1, 2))  # N x C x 1
        return feature + self.channel_add(context.view(n, c, 1, 1))


@DISTILLERS.register_module()
class FGD(BaseDistiller):
    """Focal (GT- and attention-weighted) and global (GcBlock relation) feature distillation.

    Args:
        temp: temperature of the spatial and channel attentions.
        alpha_fgd: weight of the foreground loss.
        beta_fgd: weight of the background loss.
        gamma_fgd: weight of the attention loss.
        lambda_fgd: weight of the global relation loss.
        **kwargs: :class:`BaseDistiller` arguments.
    """

    def __init__(
        self,
        temp: float = 0.5,
        alpha_fgd: float = 1e-3,
        beta_fgd: float = 5e-4,
        gamma_fgd: float = 5e-4,
        lambda_fgd: float = 5e-6,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.temp = float(temp)
        self.alpha_fgd = float(alpha_fgd)
        self.beta_fgd = float(beta_fgd)
        self.gamma_fgd = float(gamma_fgd)
        self.lambda_fgd = float(lambda_fgd)
        self.student_context = nn.ModuleList()
        self.teacher_context = nn.ModuleList()

    def build_modules(self, levels: Sequence[LevelPair]) -> None:
        self.student_context = nn.ModuleList(GlobalContext(level.teacher_channels) for level in levels)
        self.teacher_context = nn.ModuleList(GlobalContext(level.teacher_channels) for level in levels)

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> dict[str, Tensor]:
        attentions = spatial_attention(teacher, self.temp), channel_attention(teacher, self.temp)
        fg, bg = self.focal_losses(student, teacher, attentions, batch)
        return {
            "fg": self.alpha_fgd * fg,
            "bg": self.beta_fgd * bg,
            "at": self.gamma_fgd * self.attention_loss(student, attentions),
            "rela": self.lambda_fgd * self.relation_loss(student, teacher, index),
        }

    def focal_losses(
        self, student: Tensor, teacher: Tensor, attentions: tuple[Tensor, Tensor], batch: DistillBatch
    ) -> tuple[Tensor, Tensor]:
        """Unweighted (L_fg, L_bg): squared error weighted by the teacher's (spatial, channel) attentions and
        the GT masks."""
        n = teacher.shape[0]
        size = tuple(teacher.shape[-2:])
        spatial, channel = attentions[0][:, None], attentions[1][..., None, None]
        error = spatial * channel * (student - teacher).pow(2)
        fg = batch.foreground(size).to(teacher)[:, None]
        bg = batch.background(size).to(teacher)[:, None]
        return (fg * error).sum() / n, (bg * error).sum() / n

    def attention_loss(self, student: Tensor, teacher_attentions: tuple[Tensor, Tensor]) -> Tensor:
        """Unweighted L_at: L1 between the student's and the teacher's (spatial, channel) attentions."""
        n = student.shape[0]
        spatial_t, channel_t = teacher_attentions
        channel = (channel_attention(student, self.temp) - channel_t).abs().sum()
        spatial = (spatial_attention(student, self.temp) - spatial_t).abs().sum()
        return (channel + spatial) / n

    def relation_loss(self, student: Tensor, teacher: Tensor, index: int) -> Tensor:
        """Unweighted L_rela: squared error between the GcBlock outputs of the two sides."""
        n = teacher.shape[0]
        return (self.student_context[index](student) - self.teacher_context[index](teacher)).pow(2).sum() / n
