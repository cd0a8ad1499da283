"""IE-KD: inheritance and exploration knowledge distillation.

Huang et al., "Revisiting Knowledge Distillation: An Inheritance and Exploration Framework", CVPR 2021.
Follows the authors' code (aliyun/Revisiting-Knowledge-Distillation-an-Inheritance-and-Exploration-Framework:
processors/IE_KD.py, loss/factor_transfer.py, model/auto_encoder.py, config/ie_kd.yaml), applied per FPN level.

The student feature F^S (C_s channels) is split into an inheritance part and an exploration part: channels
``[0, C_s // 2)`` and ``[C_s // 2, C_s)`` ('natural'), or the same halves of a fixed random permutation
('random'), so every channel is in exactly one part. The teacher feature F^T is compressed into a factor by an
auto-encoder trained to reconstruct it; each student part has its own encoder into the factor space::

    coder(a -> b) = LeakyReLU - [Conv3x3(a -> a) - BN - LeakyReLU] - [Conv3x3(a -> b) - BN - LeakyReLU]
                    - [Conv3x3(b -> b) - BN - LeakyReLU]           (no conv bias, LeakyReLU slope 0.1)
    Phi^T = E_T(F^T),  rec = mean |F^T - D_T(Phi^T)|     E_T = coder(C_t -> k), D_T = coder(k -> C_t)
    Phi^I = E_I(F^S[inh]),  Phi^E = E_E(F^S[exp])        k = C_t // 2 factor channels by default

    ft(x, y)  = mean over n, d of |x_n / ||x_n||_2 - y_n / ||y_n||_2|      x_n: sample n's factor, flattened
    L_inh = ft(Phi^I, Phi^T)                                                (factor transfer)
    L_exp = -ft(Phi^E, Phi^T)          or, with exploration='cosine', mean over n of |cos(Phi^E_n, Phi^T_n)|
    L     = w_inh * L_inh + w_exp * L_exp,    w_inh = w_exp = 1              (config/ie_kd.yaml)

The teacher factor enters L_inh and L_exp detached: only the student and its two encoders learn from them;
the reconstruction loss trains E_T and D_T alone (the teacher's features carry no gradient). ``rec`` is
returned unweighted (``loss_iekd_rec_<level>``): ``loss_weight`` and calibration act on L only.

When the auto-encoder learns (``phase``):

- 'autoencoder': only the reconstruction loss, no L (the authors' first stage, 30 epochs on CIFAR);
- 'distill': E_T frozen (eval mode, no gradient) and L on (the authors' second stage);
- 'joint' (kdtools' default, a deliberate difference): both at once, E_T trained online by its
  reconstruction loss while L uses its current factors. It needs no schedule, it follows a peer's moving
  features (mutual learning), and it trained the BCCD student better than a short first stage
  (docs/results.md). The authors' two-stage form is ``stages`` switching ``phase`` at an epoch
  (configs/bccd/ablations/iekd_two_stage.py). In the 'autoencoder' phase the student encoders, in the
  'distill' phase the teacher auto-encoder, get no gradient: under DDP such configs set
  ``find_unused_parameters=True``.

kdtools' choices: per-level modules (the authors distil one feature map); the student encoders are the
authors' full auto-encoders' encoders only (their decoders are never used); a level whose sizes differ needs
``connector='resize'``; channels may differ (the encoders map both sides to k channels).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.registry import DISTILLERS

LEAKY_SLOPE = 0.1
SPLITS = ("natural", "random")
EXPLORATIONS = ("l1", "cosine")
PHASES = ("joint", "autoencoder", "distill")


def coder(in_channels: int, out_channels: int) -> nn.Sequential:
    """The authors' three-conv coder: LeakyReLU, then 3 x (Conv3x3 without bias - BN - LeakyReLU), a -> a -> b -> b."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(LEAKY_SLOPE)]

    layers = [nn.LeakyReLU(LEAKY_SLOPE), *block(in_channels, in_channels), *block(in_channels, out_channels),
              *block(out_channels, out_channels)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):  # the authors' initialisation: N(0, 2 / (k * k * C_out))
            nn.init.normal_(m.weight, 0.0, (2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)) ** 0.5)
    return model


class AutoEncoder(nn.Module):
    """Encoder coder(C -> k) and decoder coder(k -> C): ``forward`` returns (factor, reconstruction)."""

    def __init__(self, channels: int, factor_channels: int) -> None:
        super().__init__()
        self.encoder = coder(channels, factor_channels)
        self.decoder = coder(factor_channels, channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        factor = self.encoder(x)
        return factor, self.decoder(factor)


def normalised(factor: Tensor) -> Tensor:
    """Each sample's factor flattened and divided by its L2 norm: N x (C * H * W)."""
    return F.normalize(factor.flatten(1), p=2, dim=1)


def factor_transfer(x: Tensor, y: Tensor) -> Tensor:
    """mean over n, d of |x_n / ||x_n|| - y_n / ||y_n|||: the factor transfer loss (p = 1)."""
    return (normalised(x) - normalised(y)).abs().mean()


def abs_cosine(x: Tensor, y: Tensor) -> Tensor:
    """mean over n of |cos(x_n, y_n)| between the flattened factors."""
    return (normalised(x) * normalised(y)).sum(dim=1).abs().mean()


def split_index(channels: int, split: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(inheritance, exploration) channel indices: the halves of arange(C) ('natural') or of randperm(C)."""
    order = torch.arange(channels) if split == "natural" else torch.randperm(channels, generator=generator)
    return order[: channels // 2], order[channels // 2:]


@DISTILLERS.register_module()
class IEKD(BaseDistiller):
    """Inheritance and exploration: half the student's channels imitate the teacher's factors, half avoid them.

    Args:
        split: 'natural' (first half inherits) or 'random' (halves of a fixed permutation drawn from
            ``split_seed``, kept in the state dict).
        exploration: 'l1' (the negative factor-transfer loss) or 'cosine' (|cos| of the factors).
        phase: 'joint', 'autoencoder' or 'distill' (see the module docstring); settable per stage.
        factor_channels: k; default half the teacher's channels (the authors' 64 -> 32).
        inherit_weight: w_inh.
        explore_weight: w_exp.
        split_seed: seed of the 'random' split (levels drawn in order from one generator).
        **kwargs: :class:`BaseDistiller` arguments.
    """

    settable = (*BaseDistiller.settable, "phase", "inherit_weight", "explore_weight")
    unweighted = ("rec",)

    def __init__(
        self,
        split: str = "natural",
        exploration: str = "l1",
        phase: str = "joint",
        factor_channels: int | None = None,
        inherit_weight: float = 1.0,
        explore_weight: float = 1.0,
        split_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_choice("split", split, SPLITS)
        _check_choice("exploration", exploration, EXPLORATIONS)
        self.split = split
        self.exploration = exploration
        self.factor_channels = factor_channels
        self.inherit_weight = float(inherit_weight)
        self.explore_weight = float(explore_weight)
        self.split_seed = int(split_seed)
        self.autoencoders = nn.ModuleList()
        self.inherit_encoders = nn.ModuleList()
        self.explore_encoders = nn.ModuleList()
        self.phase = phase

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, value: str) -> None:
        _check_choice("phase", value, PHASES)
        self._phase = value
        self.train(self.training)  # a frozen auto-encoder keeps its BN statistics

    def train(self, mode: bool = True) -> IEKD:
        super().train(mode)
        if self._phase == "distill":
            self.autoencoders.eval()
        return self

    def build_modules(self, levels: Sequence[LevelPair]) -> None:
        """Per level: the teacher auto-encoder, the two student encoders and the split (buffers)."""
        generator = torch.Generator().manual_seed(self.split_seed)
        for i, level in enumerate(levels):
            channels = level.teacher_channels if self.connector == "conv1x1" else level.student_channels
            inherit, explore = split_index(channels, self.split, generator)
            self.register_buffer(f"inherit_index_{i}", inherit)
            self.register_buffer(f"explore_index_{i}", explore)
            k = self.factor_channels or max(level.teacher_channels // 2, 1)
            self.autoencoders.append(AutoEncoder(level.teacher_channels, k))
            self.inherit_encoders.append(coder(len(inherit), k))
            self.explore_encoders.append(coder(len(explore), k))
        self.train(self.training)

    def parts(self, student: Tensor, index: int) -> tuple[Tensor, Tensor]:
        """The (inheritance, exploration) channels of a student feature on level ``index``."""
        return (student.index_select(1, getattr(self, f"inherit_index_{index}")),
                student.index_select(1, getattr(self, f"explore_index_{index}")))

    def teacher_factor(self, teacher: Tensor, index: int) -> tuple[Tensor, Tensor | None]:
        """(detached teacher factor, reconstruction loss or None when the auto-encoder does not learn)."""
        autoencoder = self.autoencoders[index]
        if self.training and self._phase != "distill":
            factor, rebuilt = autoencoder(teacher.detach())
            return factor.detach(), (teacher - rebuilt).abs().mean()
        with torch.no_grad():
            return autoencoder.encoder(teacher), None

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> dict[str, Tensor]:
        factor, rec = self.teacher_factor(teacher, index)
        losses = {} if rec is None else {"rec": rec}
        if self._phase == "autoencoder" and self.training:
            return losses
        inherit, explore = self.parts(student, index)
        inherit_factor = self.inherit_encoders[index](inherit)
        explore_factor = self.explore_encoders[index](explore)
        explore_loss = (abs_cosine(explore_factor, factor) if self.exploration == "cosine"
                        else -factor_transfer(explore_factor, factor))
        losses["inh"] = self.inherit_weight * factor_transfer(inherit_factor, factor)
        losses["exp"] = self.explore_weight * explore_loss
        return losses

    def _check_alignment(self, level: LevelPair) -> None:
        """Channels may differ (both sides are encoded to k channels); sizes must match unless a connector resizes."""
        if level.student_size != level.teacher_size and self.connector is None:
            raise ValueError(
                f"IEKD level {level.name}: student feature is {level.student_size}, teacher {level.teacher_size}. "
                "Add connector='resize' to this distiller's config, or match levels of equal stride with "
                "student_levels/teacher_levels."
            )


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"IEKD {name}={value!r} is not one of {list(choices)}.")
