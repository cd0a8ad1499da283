"""RND-style feature predictor: Random Network Distillation (Burda et al. 2018) applied to FPN features.

No detection-distillation paper uses RND; this distiller is kdtools' own design, built from the RND
reference code's ingredients (a frozen random target, a trained predictor, whitened and clipped target
inputs, an error divided by its running standard deviation).

Per level, with teacher feature F^T, (connector-aligned) student feature F^S:

    T_norm = clip((F^T - mu_c) / sqrt(var_c + 1e-8), -5, 5)      mu, var: running per-channel statistics
    f      = frozen random net  Conv3x3(C -> h) - LeakyReLU(0.01) - Conv3x3(h -> E)
    g      = trained predictor  Conv3x3(C -> h) - LeakyReLU(0.01) - Conv3x3(h -> h) - LeakyReLU(0.01)
             - Conv1x1(h -> E)
    e      = mean over the E embedding channels of (g(F^S) - f(T_norm))^2          (N x H x W)
    L      = mean over locations of e / sigma_e                  sigma_e: running std of e, no mean removed

Defaults: ``embed_channels=64`` (E), ``hidden_channels=128`` (h), ``clip=5``, ``momentum=0.01`` for all
running statistics, ``update_proportion=1.0`` (RND trains its predictor on a random fraction of samples;
here a fraction of the locations), ``target_seed=0``.

kdtools' choices:

- The target reads the teacher feature, the predictor the student's, so g(F^S) can only match f(T_norm)
  where the student feature carries the teacher's information; the loss pulls the student towards it
  through a random, fixed projection rather than a learned one.
- The target's weights are buffers used with ``F.conv2d``: they are in the state dict (checkpoints keep
  them) but not in ``parameters()``, so no optimizer sees them (mmengine's optimizer constructor adds
  every parameter, trainable or not). They are drawn once from ``target_seed`` (orthogonal, gain
  sqrt(2), zero bias, RND's initialisation), so a run is reproducible.
- Running statistics (the teacher's per-channel mean and variance, the error's mean and variance) are
  exponential moving averages updated in training mode only; the first update copies the batch
  statistics. For the error, the batch mean and variance are over all locations of the batch.
- Novelty map: the detached e divided by its mean over each image (mean 1 per image), stored in
  ``batch.maps['rnd_novelty'][level_name]`` (N x H x W) for the distillers that run after this one, e.g.
  as a spatial weight. High where the teacher feature is poorly predicted from the student's.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.registry import DISTILLERS

NOVELTY_KEY = "rnd_novelty"
LEAKY_SLOPE = 0.01
VAR_EPS = 1e-8


class RunningMoments(nn.Module):
    """Exponential moving averages of a mean and a variance of shape ``shape``, kept as buffers.

    update(m_b, v_b):  mean <- (1 - a) * mean + a * m_b,  var <- (1 - a) * var + a * v_b,
    with a = 1 on the first update and ``momentum`` afterwards.
    """

    def __init__(self, shape: Sequence[int], momentum: float) -> None:
        super().__init__()
        self.momentum = float(momentum)
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, batch_mean: Tensor, batch_var: Tensor) -> None:
        rate = torch.where(self.count == 0, 1.0, self.momentum).to(self.mean)
        self.mean.lerp_(batch_mean.to(self.mean), rate)
        self.var.lerp_(batch_var.to(self.var), rate)
        self.count += 1

    def std(self) -> Tensor:
        return (self.var + VAR_EPS).sqrt()


class FrozenRandomNet(nn.Module):
    """Conv3x3(C -> h) - LeakyReLU - Conv3x3(h -> E) with random weights stored as buffers (never trained)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, generator: torch.Generator):
        super().__init__()
        gain = math.sqrt(2.0)
        weight1 = nn.init.orthogonal_(torch.empty(hidden_channels, in_channels, 3, 3), gain, generator=generator)
        weight2 = nn.init.orthogonal_(torch.empty(out_channels, hidden_channels, 3, 3), gain, generator=generator)
        self.register_buffer("weight1", weight1)
        self.register_buffer("bias1", torch.zeros(hidden_channels))
        self.register_buffer("weight2", weight2)
        self.register_buffer("bias2", torch.zeros(out_channels))

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(F.conv2d(x, self.weight1, self.bias1, padding=1), LEAKY_SLOPE)
        return F.conv2d(x, self.weight2, self.bias2, padding=1)


def predictor(in_channels: int, hidden_channels: int, out_channels: int) -> nn.Sequential:
    """The trained predictor g: Conv3x3 - LeakyReLU - Conv3x3 - LeakyReLU - Conv1x1."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, 3, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Conv2d(hidden_channels, out_channels, 1),
    )


@DISTILLERS.register_module()
class RND(BaseDistiller):
    """Predict a frozen random embedding of the whitened teacher feature from the student feature.

    Args:
        embed_channels: channels E of the random embedding.
        hidden_channels: hidden channels h of the target and the predictor.
        target_seed: seed of the target networks' weights (levels drawn in order from one generator).
        clip: whitened teacher features are clipped to [-clip, clip].
        momentum: rate of the running statistics' moving averages.
        update_proportion: fraction of locations, drawn afresh each step, that enter the loss.
        **kwargs: ``BaseDistiller`` arguments.
    """

    def __init__(
        self,
        embed_channels: int = 64,
        hidden_channels: int = 128,
        target_seed: int = 0,
        clip: float = 5.0,
        momentum: float = 0.01,
        update_proportion: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 < update_proportion <= 1.0:
            raise ValueError(f"update_proportion must lie in (0, 1]; got {update_proportion}.")
        self.embed_channels = int(embed_channels)
        self.hidden_channels = int(hidden_channels)
        self.target_seed = int(target_seed)
        self.clip = float(clip)
        self.momentum = float(momentum)
        self.update_proportion = float(update_proportion)
        self.targets = nn.ModuleList()
        self.predictors = nn.ModuleList()
        self.teacher_moments = nn.ModuleList()
        self.error_moments = nn.ModuleList()

    def build_modules(self, levels: Sequence[LevelPair]) -> None:
        """Per level: frozen target, predictor, teacher and error running statistics."""
        generator = torch.Generator().manual_seed(self.target_seed)
        e, h = self.embed_channels, self.hidden_channels
        self.targets = nn.ModuleList(FrozenRandomNet(lv.teacher_channels, h, e, generator) for lv in levels)
        self.predictors = nn.ModuleList(predictor(lv.teacher_channels, h, e) for lv in levels)
        self.teacher_moments = nn.ModuleList(RunningMoments((lv.teacher_channels,), self.momentum) for lv in levels)
        self.error_moments = nn.ModuleList(RunningMoments((), self.momentum) for _ in levels)

    def whiten(self, teacher: Tensor, index: int, update: bool) -> Tensor:
        """clip((F^T - mu_c) / sqrt(var_c + eps), -clip, clip); with ``update`` the statistics first take this batch."""
        moments = self.teacher_moments[index]
        if update:
            moments.update(teacher.mean(dim=(0, 2, 3)), teacher.var(dim=(0, 2, 3), unbiased=False))
        normed = (teacher - moments.mean[None, :, None, None]) / moments.std()[None, :, None, None]
        return normed.clamp(-self.clip, self.clip)

    def prediction_error(self, student: Tensor, teacher: Tensor, index: int, update: bool) -> Tensor:
        """e = mean over embedding channels of (g(F^S) - f(T_norm))^2, N x H x W."""
        target = self.targets[index](self.whiten(teacher.detach(), index, update))
        return (self.predictors[index](student) - target).pow(2).mean(dim=1)

    def visual_maps(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> dict[str, Tensor]:
        """The novelty map of level ``index``; leaves the running statistics alone."""
        return {"novelty": novelty_map(self.prediction_error(student, teacher, index, update=False).detach())}

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor:
        error = self.prediction_error(student, teacher, index, update=self.training)
        detached = error.detach()
        moments = self.error_moments[index]
        if self.training:
            moments.update(detached.mean(), detached.var(unbiased=False))
        batch.maps.setdefault(NOVELTY_KEY, {})[self.levels[index].name] = novelty_map(detached)
        if self.training and self.update_proportion < 1.0:
            chosen = (torch.rand_like(error) < self.update_proportion).to(error)
            mean_error = (error * chosen).sum() / chosen.sum().clamp(min=1.0)
        else:
            mean_error = error.mean()
        return mean_error / moments.std()


def novelty_map(error: Tensor) -> Tensor:
    """error / its mean over each image (N x H x W), so every image's map averages 1 (all ones if the error is 0)."""
    mean = error.mean(dim=(1, 2), keepdim=True)
    return torch.where(mean > 0, error / mean.clamp(min=torch.finfo(error.dtype).tiny), torch.ones_like(error))
