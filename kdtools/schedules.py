"""Loss-weight schedules for distillers: warm-up, step or cosine decay, and a stop epoch.

Declared per distiller in the config and applied by :class:`kdtools.hooks.DistillScheduleHook`::

    distill = [dict(type='MGD', schedule=dict(warmup_iters=500, decay='cosine', stop_epoch=20))]

The scale is a pure function of (iteration, epoch, max_iters), so a resumed run continues it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class LossSchedule:
    """Multiplier of a distiller's losses over training.

    Args:
        warmup_iters: linear ramp from ``warmup_start`` to 1 over these iterations.
        warmup_start: the scale at iteration 0.
        decay: None, ``'step'`` (times ``gamma`` at each epoch in ``steps``) or ``'cosine'`` (from 1 after
            warm-up down to ``min_ratio`` at the last iteration).
        stop_epoch: from this epoch (0-based) on the scale is 0, as mmrazor's StopDistillHook.
    """

    warmup_iters: int = 0
    warmup_start: float = 0.0
    decay: str | None = None
    steps: tuple[int, ...] = field(default_factory=tuple)
    gamma: float = 0.1
    min_ratio: float = 0.0
    stop_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.decay not in (None, "step", "cosine"):
            raise ValueError(f"schedule decay must be None, 'step' or 'cosine', got {self.decay!r}")

    @classmethod
    def from_config(cls, cfg: dict | None) -> LossSchedule | None:
        if cfg is None:
            return None
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ValueError(f"Unknown schedule keys {unknown}; allowed: {sorted(allowed)}")
        values = dict(cfg)
        if "steps" in values:
            values["steps"] = tuple(values["steps"])
        return cls(**values)

    def scale(self, iteration: int, epoch: int, max_iters: int) -> float:
        if self.stop_epoch is not None and epoch >= self.stop_epoch:
            return 0.0
        if iteration < self.warmup_iters:
            return self.warmup_start + (1 - self.warmup_start) * iteration / self.warmup_iters
        if self.decay == "step":
            return self.gamma ** sum(epoch >= s for s in self.steps)
        if self.decay == "cosine":
            span = max(max_iters - self.warmup_iters, 1)
            progress = min((iteration - self.warmup_iters) / span, 1.0)
            return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0
