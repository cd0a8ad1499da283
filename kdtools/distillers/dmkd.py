"""DMKD - Dual Masked Knowledge Distillation (ICASSP 2024, arXiv 2309.02719).

Published (abstract): two masking branches, one guided by spatial attention and one by channel attention,
each reconstructs the teacher feature from the masked student feature; the two reconstructions are fused
by self-adjustable weights.

Per level, with teacher attentions A^S_t (N x H x W) and A^C_t (N x C) from ``kdtools.modules.attention``:

    M^S = keep mask over the H*W positions chosen by A^S_t        (N x 1 x H x W)
    M^C = keep mask over the C channels chosen by A^C_t           (N x C x 1 x 1)
    F_hat = w_s * G_s(F^S * M^S) + w_c * G_c(F^S * M^C)
    L = alpha * sum (F^T - F_hat)^2 / N

G_s, G_c are MGD generation blocks (Conv3x3-ReLU-Conv3x3 on C_t channels), one pair per level.

Defaults (RetinaNet, MGD's numbers as the paper builds on MGD): ``alpha_dmkd=2e-5``, ``mask_ratio=0.65``,
``temp=0.5`` (FGD's attention temperature), ``mask_rule='topk'``, ``fusion='softmax'``.

kdtools' reading (no public code or full text; all configurable):

- Which entries are masked: those the teacher attends to most (``mask_rule='topk'``: the
  k = round(mask_ratio * count) highest-attention positions, resp. channels, per image), so the student
  has to reconstruct the informative part. ``'threshold'`` masks entries above the per-image
  (1 - mask_ratio)-quantile of the attention; ``'sample'`` draws k entries without replacement with
  probability proportional to the attention. For ablations: ``'bottomk'`` masks the least-attended
  entries, ``'random'`` masks each entry with probability mask_ratio whatever the attention (MGD's mask).
  See ``kdtools.modules.masking``.
- One ``mask_ratio`` serves both branches unless ``channel_mask_ratio`` sets the channel branch's own.
- Fusion weights: a learnable pair of logits per level, initialised equal (0).
  ``'softmax'``: (w_s, w_c) = softmax(logits), starting at (0.5, 0.5) and summing to 1;
  ``'sigmoid'``: w = sigmoid(logits), each in (0, 1) and free of the other, starting at 0.5;
  ``'fixed'``: w_s = w_c = 0.5, not trained. The spatial weight w_s of each level is logged as
  ``<name>_ws_<level>`` so that a collapse onto one branch shows in the training log.
- The loss keeps MGD's sum/N reduction so MGD's alpha carries over.

``DualMaskDistiller`` holds the machinery that DFMSD reuses; DMKD adds the weight ``alpha_dmkd``.

With ``loss_weight='auto'`` (``kdtools.calibration``) the default ``auto_ratio`` is 5.4, the distillation /
detection loss ratio that the published weight gives at initialisation once carried to another feature area by
the area rule (weight x COCO positions / run positions, 21.9 for BCCD's 256x192 inputs), measured on forward
passes of the untrained BCCD student. In training it fixes the weight near a tenth of the area rule's (2.5).
The ratio of the same weight over the first 50 training iterations, 45, distils worse on BCCD (seed 0: 45.2
against 47.7 mAP, docs/results.md).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.modules.attention import channel_attention, spatial_attention
from kdtools.modules.connectors import generation_block
from kdtools.modules.masking import MASK_RULES, keep_mask
from kdtools.registry import DISTILLERS

FUSIONS = ("softmax", "sigmoid", "fixed")


class DualMaskDistiller(BaseDistiller):
    """Spatial- and channel-attention masked reconstruction of the teacher feature, fused by learned weights.

    Args:
        mask_ratio: fraction of positions (spatial branch) and of channels (channel branch) masked.
        channel_mask_ratio: the channel branch's own fraction; None: ``mask_ratio``.
        temp: temperature T of the teacher attentions.
        mask_rule: 'topk', 'bottomk', 'threshold', 'sample' or 'random' (see ``kdtools.modules.masking``).
        fusion: 'softmax', 'sigmoid' or 'fixed' weighting of the two reconstructions.
        **kwargs: ``BaseDistiller`` arguments.
    """

    settable = (*BaseDistiller.settable, "mask_ratio", "channel_mask_ratio")
    training_only = ("spatial_generators", "channel_generators")

    def __init__(
        self,
        mask_ratio: float = 0.65,
        channel_mask_ratio: float | None = None,
        temp: float = 0.5,
        mask_rule: str = "topk",
        fusion: str = "softmax",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if mask_rule not in MASK_RULES:
            raise ValueError(f"Unknown mask_rule {mask_rule!r}; use one of {MASK_RULES}.")
        if fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {fusion!r}; use one of {FUSIONS}.")
        self.mask_ratio = _checked_ratio(mask_ratio)
        self.channel_mask_ratio = None if channel_mask_ratio is None else _checked_ratio(channel_mask_ratio)
        self.temp = float(temp)
        self.mask_rule = mask_rule
        self.fusion = fusion
        self.spatial_generators = nn.ModuleList()
        self.channel_generators = nn.ModuleList()
        self.fusion_logits = nn.ParameterList()

    def build_modules(self, levels: Sequence[LevelPair]) -> None:
        """Per level: the two generation blocks and, unless fusion is 'fixed', a pair of fusion logits."""
        self.spatial_generators = nn.ModuleList(generation_block(lv.teacher_channels) for lv in levels)
        self.channel_generators = nn.ModuleList(generation_block(lv.teacher_channels) for lv in levels)
        if self.fusion != "fixed":
            self.fusion_logits = nn.ParameterList(nn.Parameter(torch.zeros(2)) for _ in levels)

    def apply_settings(self, **settings: float) -> None:
        """Set stage-dependent attributes (``settable``), e.g. ``apply_settings(mask_ratio=0.5)``.

        ``mask_ratio`` must lie in [0, 1], the other values be >= 0; unknown names raise ``ValueError``.
        """
        checked = {
            name: _checked_ratio(value) if name.endswith("mask_ratio") else _checked_nonnegative(name, value)
            for name, value in settings.items()
        }
        super().apply_settings(**checked)

    def fusion_weights(self, index: int) -> Tensor:
        """(w_s, w_c) of level ``index``."""
        if self.fusion == "fixed":
            return torch.full((2,), 0.5)
        logits = self.fusion_logits[index]
        return torch.softmax(logits, dim=0) if self.fusion == "softmax" else torch.sigmoid(logits)

    def log_values(self) -> dict[str, Tensor]:
        """Besides the base class's: the spatial fusion weight w_s of every level."""
        fusion = {} if self.fusion == "fixed" else {
            f"{self.name}_ws_{level.name}": self.fusion_weights(i)[0].detach() for i, level in enumerate(self.levels)}
        return {**super().log_values(), **fusion}

    def aligned(self, student: Tensor, teacher: Tensor, index: int) -> tuple[Tensor, Tensor]:
        """The features the loss is computed on; DMKD uses them as they come."""
        return student, teacher

    def mask_source(self, teacher: Tensor, aligned_teacher: Tensor) -> Tensor:
        """The teacher feature whose attentions choose the masks; DMKD: the (aligned) feature of the loss."""
        return aligned_teacher

    def position_weight(self, batch: DistillBatch, size: Sequence[int]) -> Tensor | None:
        """An N x H x W weight of the squared error per position, or None (DMKD: none)."""
        return None

    def spatial_scores(self, attention: Tensor, batch: DistillBatch) -> Tensor:
        """Scores that choose the masked positions (N x H x W); DMKD uses the teacher's spatial attention."""
        return attention

    def masks(self, teacher: Tensor, batch: DistillBatch) -> tuple[Tensor, Tensor]:
        """Keep masks M^S (N x 1 x H x W) and M^C (N x C x 1 x 1) chosen by the teacher's attentions."""
        n, c, h, w = teacher.shape
        scores = self.spatial_scores(spatial_attention(teacher, self.temp), batch)
        spatial = keep_mask(scores.reshape(n, h * w), self.mask_ratio, self.mask_rule).reshape(n, 1, h, w)
        channel_ratio = self.mask_ratio if self.channel_mask_ratio is None else self.channel_mask_ratio
        channel = keep_mask(channel_attention(teacher, self.temp), channel_ratio, self.mask_rule)
        return spatial, channel.reshape(n, c, 1, 1)

    def reconstruct(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor:
        """F_hat = w_s * G_s(F^S * M^S) + w_c * G_c(F^S * M^C)."""
        spatial, channel = self.masks(teacher, batch)
        w_s, w_c = self.fusion_weights(index).to(student).unbind()
        return (
            w_s * self.spatial_generators[index](student * spatial)
            + w_c * self.channel_generators[index](student * channel)
        )

    def reconstruction_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor:
        """sum w * (T' - F_hat)^2 / N on the aligned features (S', T'), w the position weight (1 by default)."""
        return self.aligned_reconstruction_loss(*self.aligned(student, teacher, index), teacher, batch, index)

    def aligned_reconstruction_loss(self, student: Tensor, teacher: Tensor, raw_teacher: Tensor, batch: DistillBatch,
                                    index: int) -> Tensor:
        """``reconstruction_loss`` on features already aligned; ``raw_teacher`` is the teacher before alignment."""
        source = self.mask_source(raw_teacher, teacher)
        error = (teacher - self.reconstruct(student, source, batch, index)).pow(2)
        weight = self.position_weight(batch, error.shape[-2:])
        if weight is not None:
            error = error * weight[:, None]
        return error.sum() / student.shape[0]

    def visual_maps(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> dict[str, Tensor]:
        """The spatial selection score and the masked positions (1 = masked) of level ``index``."""
        source = self.mask_source(teacher, self.aligned(student, teacher, index)[1])
        spatial, _ = self.masks(source, batch)
        scores = self.spatial_scores(spatial_attention(source, self.temp), batch)
        return {"selection score": scores, "masked positions": 1.0 - spatial[:, 0]}


@DISTILLERS.register_module()
class DMKD(DualMaskDistiller):
    """Dual Masked Knowledge Distillation: L = alpha_dmkd * sum (F^T - F_hat)^2 / N per level.

    Args:
        alpha_dmkd: loss weight (MGD's 2e-5 for RetinaNet).
        **kwargs: ``DualMaskDistiller`` and ``BaseDistiller`` arguments.
    """

    settable = (*DualMaskDistiller.settable, "alpha_dmkd")
    auto_ratio = 5.4

    def __init__(self, alpha_dmkd: float = 2e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alpha_dmkd = float(alpha_dmkd)

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor:
        return self.alpha_dmkd * self.reconstruction_loss(student, teacher, batch, index)


def _checked_ratio(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"mask_ratio must lie in [0, 1]; got {value}.")
    return float(value)


def _checked_nonnegative(name: str, value: float) -> float:
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}.")
    return float(value)
