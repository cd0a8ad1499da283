"""The head distiller interface: distillation on what dense heads predict.

A head distiller stands beside the feature distiller (:class:`~kdtools.distillers.base.BaseDistiller`). It
declares what it needs and gets it through the records, never through config plumbing:

- ``head_types``: the head classes (or their bases) whose outputs it understands, e.g. ``('GFLHead',)`` for
  methods on box distributions. Checked at build time on both heads; the error names the head type.
- ``student_taps()``/``teacher_taps()``: the head by default (its per-level ``cls_scores`` and
  ``bbox_preds``); a method may add intermediate head features (CrossKD). The teacher runs to the head only
  because a head is declared.
- targets: :func:`kdtools.modules.dense_heads.assigned_targets` gives the student head's own assignment of
  the batch's GT boxes and labels; a distiller with ``uses_targets = True`` gets the one the student's loss
  made (recorded by the detector), not a second run of the assigner.

Writing one::

    @DISTILLERS.register_module()
    class ScoreL2(HeadDistiller):
        '''Mean squared error between class probabilities.'''

        def head_loss(self, student, teacher, batch):
            s, t = flatten_levels(student.cls_scores), flatten_levels(teacher.cls_scores)
            return F.mse_loss(s.sigmoid(), t.sigmoid())

``head_loss`` gets :class:`~kdtools.detectors.taps.HeadOutputs` of both sides (``cls_scores``,
``bbox_preds``, ``head``: the module) and returns a scalar or a dict of named scalars; the base class applies
``loss_weight`` and the schedule and names them ``loss_<name>[_<key>]``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from kdtools.distillers.base import BaseDistiller, DistillBatch
from kdtools.schedules import LossSchedule

if TYPE_CHECKING:
    from kdtools.detectors.taps import HeadOutputs, Records


class HeadDistiller(BaseModule):
    """Base class of distillers on dense-head outputs.

    Args:
        loss_weight: multiplies every loss of this distiller.
        student_head: module path of the student's dense head.
        teacher_head: the same in the teacher; defaults to ``student_head``.
        name: the name in loss keys; defaults to the lower-case class name.
        schedule: a loss-weight schedule (see :class:`kdtools.schedules.LossSchedule`).
    """

    settable: tuple[str, ...] = ("loss_weight",)
    head_types: tuple[str, ...] = ()  # class names a head must be or derive from; () accepts any dense head
    needs: str = "dense-head outputs"  # what the head types provide, for the build-time error
    uses_targets: bool = False  # reads assigned_targets(): the detector records the student's own assignment
    training_only: tuple[str, ...] = ()
    calibration = None  # loss_weight='auto' is a feature distiller option

    def __init__(
        self,
        loss_weight: float = 1.0,
        student_head: str = "bbox_head",
        teacher_head: str | None = None,
        name: str | None = None,
        schedule: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = float(loss_weight)
        self.student_head = student_head
        self.teacher_head = teacher_head or student_head
        self.name = name or type(self).__name__.lower()
        self.schedule = LossSchedule.from_config(schedule)
        self.loss_scale = 1.0

    apply_settings = BaseDistiller.apply_settings
    loss_name = BaseDistiller.loss_name

    def student_taps(self) -> list[str]:
        return [self.student_head]

    def teacher_taps(self) -> list[str]:
        return [self.teacher_head]

    def tap_settings(self) -> dict[str, Any]:
        return {"student_head": self.student_head, "teacher_head": self.teacher_head}

    def inputs(self, student: Records, teacher: Records) -> tuple[HeadOutputs, HeadOutputs]:
        """The arguments of ``forward`` besides the batch: both heads' outputs."""
        return student.head(self.student_head), teacher.head(self.teacher_head)

    def training_only_blocks(self) -> list[list[nn.Module]]:
        return []

    def training_only_pass(self, student: Records, teacher: Records) -> Callable[[], None] | None:
        """What this distiller runs beyond the two models' passes (forward + backward), to be timed alone by
        tools/benchmark.py on these records; None when nothing (the default)."""
        return None

    def log_values(self) -> dict[str, Tensor]:
        """Scalars to log beside the losses; none by default."""
        return {}

    def check_heads(self, student: Records, teacher: Records) -> None:
        """Build time: both heads are of a type this method understands and output dense predictions."""
        for side, records, tap in (("student", student, self.student_head), ("teacher", teacher, self.teacher_head)):
            head = records.modules[tap]
            kinds = {klass.__name__ for klass in type(head).__mro__}
            if self.head_types and not kinds & set(self.head_types):
                raise ValueError(
                    f"{type(self).__name__} {self.name!r} needs {self.needs}, which heads of type "
                    f"{list(self.head_types)} (and their subclasses) give; the {side}'s {tap!r} is "
                    f"{type(head).__name__}. Use such a head (e.g. GFL's) or a distiller for this head."
                )
            records.head(tap)
        self.check_pair(student.head(self.student_head), teacher.head(self.teacher_head))

    def check_pair(self, student: HeadOutputs, teacher: HeadOutputs) -> None:
        """Both heads predict on the same locations with the same outputs (shapes of the probe)."""
        for field in ("cls_scores", "bbox_preds"):
            s = [tuple(t.shape[1:]) for t in getattr(student, field)]
            t = [tuple(x.shape[1:]) for x in getattr(teacher, field)]
            if s != t:
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: the student's {field} are {s}, the teacher's {t} (K x H x W "
                    "per level). Prediction distillation needs heads with the same classes, anchors, levels and "
                    "box encoding."
                )

    def head_loss(self, student: HeadOutputs, teacher: HeadOutputs, batch: DistillBatch) -> Tensor | dict:
        raise NotImplementedError(f"{type(self).__name__} must implement head_loss()")

    def forward(self, student: HeadOutputs, teacher: HeadOutputs, batch: DistillBatch) -> dict[str, Tensor]:
        """Named, weighted losses. Computed in fp32 whatever autocast is active."""
        scale = self.loss_weight * self.loss_scale
        with torch.autocast(device_type=student.cls_scores[0].device.type, enabled=False):
            out = self.head_loss(student, teacher, batch)
        return {self.loss_name(key, ""): value * scale
                for key, value in (out.items() if isinstance(out, dict) else [("", out)])}
