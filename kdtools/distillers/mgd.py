"""MGD: masked generative distillation.

Yang et al., "Masked Generative Distillation", ECCV 2022. Follows the authors' code (yzd-v/MGD).

A random spatial mask, shared across channels, hides a fraction lambda of the student's positions; a
generation block G (Conv3x3 -> ReLU -> Conv3x3 on C_t channels) must rebuild the teacher feature from the rest::

    R ~ U(0, 1)^{N x 1 x H x W},   M = 0 where R > 1 - lambda, else 1
    L = alpha * sum_{n,c,h,w} (F^T - G(F^S * M))^2 / N

Published defaults: alpha = 2e-5, lambda = 0.65 for RetinaNet / RepPoints students (levels P3-P7);
alpha = 5e-7, lambda = 0.45 for two-stage students (P2-P5). Reduction: sum / N per level, summed over levels,
which is why alpha is tiny. Channels must match unless ``connector='conv1x1'``.

kdtools addition: with ``spatial_weight='<key>'`` the squared error at each position is multiplied by
``batch.maps[<key>][<level>]`` (N x H x W, mean about 1, detached), a map written by a distiller that runs
earlier in ``distill`` (e.g. RND's 'rnd_novelty'). The default ``None`` is the published loss.

With ``loss_weight='auto'`` (``kdtools.calibration``) the default ``auto_ratio`` is the distillation /
detection loss ratio that the published weight gives once carried to another feature area by the area rule
(weight x COCO positions / run positions, 21.9 for BCCD's 256x192 inputs): 48 on BCCD, the loss sums
over the first 50 training iterations of a BCCD run at that weight (``tools/loss_ratio.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.modules.connectors import generation_block
from kdtools.registry import DISTILLERS


@DISTILLERS.register_module()
class MGD(BaseDistiller):
    """Masked generative distillation: rebuild the teacher feature from a randomly masked student feature.

    Args:
        alpha_mgd: loss coefficient (applied to the sum / N loss).
        lambda_mgd: expected fraction of masked positions.
        spatial_weight: key of a per-level N x H x W map in ``batch.maps`` that weights each position, or None.
        **kwargs: :class:`BaseDistiller` arguments.
    """

    training_only = ("generation",)
    auto_ratio = 48.0

    def __init__(
        self, alpha_mgd: float = 2e-5, lambda_mgd: float = 0.65, spatial_weight: str | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.alpha_mgd = float(alpha_mgd)
        self.lambda_mgd = float(lambda_mgd)
        self.spatial_weight = spatial_weight
        self.generation = nn.ModuleList()

    def build_modules(self, levels: Sequence[LevelPair]) -> None:
        self.generation = nn.ModuleList(generation_block(level.teacher_channels) for level in levels)

    def random_mask(
        self, shape: tuple[int, int, int], device: torch.device | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """N x 1 x H x W mask for a (N, H, W) map: 0 with probability lambda, else 1."""
        n, h, w = shape
        draw = torch.rand((n, 1, h, w), device=device, generator=generator)
        return (draw <= 1 - self.lambda_mgd).float()

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor:
        n, _, h, w = teacher.shape
        mask = self.random_mask((n, h, w), device=student.device)
        error = (teacher - self.generation[index](student * mask)).pow(2)
        if self.spatial_weight is not None:
            error = error * self.position_weight(batch, index)[:, None]
        return self.alpha_mgd * error.sum() / n

    def position_weight(self, batch: DistillBatch, index: int) -> Tensor:
        """The detached N x H x W map ``batch.maps[spatial_weight][level]``; a KeyError says who must write it."""
        level = self.levels[index].name
        try:
            weight = batch.maps[self.spatial_weight][level]
        except KeyError:
            raise KeyError(
                f"{type(self).__name__}(spatial_weight={self.spatial_weight!r}) needs "
                f"batch.maps[{self.spatial_weight!r}][{level!r}], which no earlier distiller wrote. List the "
                f"distiller that writes {self.spatial_weight!r} (RND for 'rnd_novelty') before "
                f"{type(self).__name__} in `distill`."
            ) from None
        return weight.detach()
