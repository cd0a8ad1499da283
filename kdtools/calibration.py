"""Loss weights that carry across resolutions and data sets: ``loss_weight='auto'``.

Losses summed over every position and divided by N (MGD, DMKD, DFMSD) grow with the feature area, so a weight
published for COCO's 1333 x 800 inputs is about 22 times too small at 256 x 192 (22400 against 1024 positions
on P3-P7) and 66 times at 128 x 128. With
``loss_weight='auto'`` a distiller measures, over the first ``auto_iters`` training iterations, its own loss
(with its method weights, e.g. ``alpha_mgd``, but before ``loss_weight`` and the schedule) against the
student's detection loss, and fixes the weight that makes their ratio ``auto_ratio``::

    w = auto_ratio * sum_i L_det(i) / sum_i L_kd(i)        over iterations i < auto_iters

Until then the running estimate is used. The sums and the weight are buffers, so they are saved in
checkpoints and a resumed run continues (or keeps) the calibration exactly; under DDP the sums are added
over processes before the weight is fixed, so every process uses the same weight. The fixed weight is
logged with the value to pin (``loss_weight=w``) for runs that should not calibrate.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from mmengine.dist import all_reduce
from mmengine.logging import MMLogger
from torch import Tensor, nn


def detection_loss(losses: Mapping[str, Tensor | Sequence[Tensor]]) -> Tensor:
    """The total of a detector's loss dict as mmengine's ``parse_losses`` adds it (keys containing 'loss')."""
    parts = [v.mean() if isinstance(v, Tensor) else sum(t.mean() for t in v) for k, v in losses.items() if "loss" in k]
    return torch.stack(parts).sum()


class LossCalibration(nn.Module):
    """Measures ``detection / distillation`` loss over the first ``iters`` steps and fixes the weight.

    Args:
        ratio: the distillation loss wanted, as a fraction of the detection loss.
        iters: training iterations measured before the weight is fixed.
        owner: the distiller's name, for the log.
    """

    def __init__(self, ratio: float, iters: int, owner: str) -> None:
        super().__init__()
        if ratio <= 0 or iters < 1:
            raise ValueError(f"auto_ratio must be > 0 and auto_iters >= 1, got {ratio} and {iters}.")
        self.ratio = float(ratio)
        self.iters = int(iters)
        self.owner = owner
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long))
        self.register_buffer("distill_sum", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("detection_sum", torch.tensor(0.0, dtype=torch.float64))
        self.register_buffer("weight", torch.tensor(1.0, dtype=torch.float64))
        self._steps = 0  # a host-side copy of ``steps``: no device sync per iteration

    @property
    def done(self) -> bool:
        return self._steps >= self.iters

    def update(self, distill: Tensor, detection: Tensor) -> Tensor:
        """Add one training step's losses (detached scalars) and return the weight to use now."""
        if self.done:
            return self.weight
        self.distill_sum += distill.detach().double()
        self.detection_sum += detection.detach().double()
        self._steps += 1
        self.steps.fill_(self._steps)
        if self.done:
            all_reduce(self.distill_sum)
            all_reduce(self.detection_sum)
        self.weight.copy_(self.ratio * self.detection_sum / self.distill_sum.clamp_min(1e-12))
        if self.done:
            MMLogger.get_current_instance().info(
                f"{self.owner}: loss_weight calibrated over {self.iters} iterations to {self.weight.item():.4g} "
                f"(distillation / detection loss = {self.ratio:g}); set loss_weight={self.weight.item():.4g} "
                "to pin it.")
        return self.weight

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._steps = int(self.steps)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, iters={self.iters}"
