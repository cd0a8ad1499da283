"""The query distiller interface: distillation on what a DETR's decoder queries predict.

A query distiller reads :class:`~kdtools.detectors.queries.QueryOutputs` of both sides: per decoder layer the
matching queries' class logits, boxes and embeddings, the denoising queries left out. It declares the taps
(the head's and the decoder's calls; the neck when it also reads features), which run the teacher through its
decoder and head and no further.

Checked at build time: both detectors are DETRs (mmdet's ``DetectionTransformer``, e.g. DINO, Deformable DETR)
with a DETR head; student and teacher decoder layers pair one to one, or by ``layer_map`` (the teacher layer of
each student layer) when their numbers differ.

Writing one::

    @DISTILLERS.register_module()
    class LastLayerL1(QueryDistiller):
        '''L1 between the last layers' boxes, query by query.'''

        def query_loss(self, student, teacher, batch):
            return (student.boxes[-1] - teacher.boxes[-1]).abs().mean()
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from kdtools.detectors.queries import QueryOutputs, query_outputs
from kdtools.detectors.taps import CALL_SUFFIX
from kdtools.distillers.base import BaseDistiller, DistillBatch
from kdtools.schedules import LossSchedule

if TYPE_CHECKING:
    from kdtools.detectors.taps import Records


def is_detr(model: nn.Module) -> bool:
    from mmdet.models.detectors import DetectionTransformer

    return isinstance(model, DetectionTransformer)


def check_decodable(distiller: QueryDistiller, records: Records, side: str) -> None:
    """Build time: ``side``'s decoder can decode queries of ``distiller``'s own (a DINO-style decoder, which
    takes no ``query_pos`` input: :func:`kdtools.detectors.queries.decode`)."""
    tap = distiller.decoder + CALL_SUFFIX
    if "query_pos" in records.call(tap).kwargs:
        decoder = type(records.modules[tap]).__name__
        raise ValueError(
            f"{type(distiller).__name__} {distiller.name!r}: the {side}'s decoder ({decoder})"
            " takes query_pos, which extra decoder queries do not have; they are decoded on DINO-style decoders "
            "(DINO). On Deformable DETR use DETRDistill without query_prior_weight.")


class QueryDistiller(BaseModule):
    """Base class of distillers on DETR queries.

    Args:
        loss_weight: multiplies every loss of this distiller.
        layer_map: the teacher decoder layer of each student layer; default one to one (equal layer counts).
        head: module path of both detectors' DETR head.
        decoder: module path of both detectors' decoder.
        name: the name in loss keys; defaults to the lower-case class name.
        schedule: a loss-weight schedule (see :class:`kdtools.schedules.LossSchedule`).
    """

    settable: tuple[str, ...] = ("loss_weight",)
    training_only: tuple[str, ...] = ()
    calibration = None
    feature_tap: str | None = None  # the neck, for a method that also distils features

    def __init__(
        self,
        loss_weight: float = 1.0,
        layer_map: Sequence[int] | None = None,
        head: str = "bbox_head",
        decoder: str = "decoder",
        name: str | None = None,
        schedule: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.loss_weight = float(loss_weight)
        self.layer_map = list(layer_map) if layer_map is not None else None
        self.head = head
        self.decoder = decoder
        self.name = name or type(self).__name__.lower()
        self.schedule = LossSchedule.from_config(schedule)
        self.loss_scale = 1.0

    apply_settings = BaseDistiller.apply_settings
    loss_name = BaseDistiller.loss_name

    def student_taps(self) -> list[str]:
        return [self.head + CALL_SUFFIX, self.decoder + CALL_SUFFIX] + ([self.feature_tap] if self.feature_tap else [])

    teacher_taps = student_taps

    def tap_settings(self) -> dict[str, Any]:
        return {"head": self.head, "decoder": self.decoder, "feature_tap": self.feature_tap}

    def inputs(self, student: Records, teacher: Records) -> tuple[QueryOutputs, QueryOutputs]:
        return (query_outputs(student, self.head, self.decoder, self.feature_tap),
                query_outputs(teacher, self.head, self.decoder, self.feature_tap))

    def training_only_blocks(self) -> list[list[nn.Module]]:
        return []

    def training_only_pass(self, student: Records, teacher: Records) -> Callable[[], None] | None:
        """What this distiller runs beyond the two models' passes (e.g. extra decoder passes), forward and
        backward, to be timed alone by tools/benchmark.py on these records; None when nothing (the default)."""
        return None

    def log_values(self) -> dict[str, Tensor]:
        return {}

    @classmethod
    def check_detector(cls, model: nn.Module, side: str) -> None:
        """Build time: ``model`` is a DETR; the error names the detector type."""
        if not is_detr(model):
            raise ValueError(
                f"{cls.__name__} distils DETR queries; the {side} is a {type(model).__name__}, not a DETR "
                "(mmdet's DetectionTransformer: DINO, DeformableDETR, ...). Use a feature or head distiller for it.")

    def check_pair(self, student: Records, teacher: Records) -> None:
        """Build time: both heads are DETR heads and the decoder layers pair (``layer_map``)."""
        from mmdet.models.dense_heads import DETRHead

        for side, records in (("student", student), ("teacher", teacher)):
            head = records.modules[self.head + CALL_SUFFIX]
            if not isinstance(head, DETRHead):
                raise ValueError(f"{type(self).__name__} {self.name!r}: the {side}'s {self.head!r} is "
                                 f"{type(head).__name__}, not a DETR head (DETRHead and subclasses).")
        s, t = (query_outputs(r, self.head, self.decoder).num_layers for r in (student, teacher))
        self.layer_map = self.checked_layer_map(s, t)

    def checked_layer_map(self, student_layers: int, teacher_layers: int) -> list[int]:
        if self.layer_map is None:
            if student_layers != teacher_layers:
                raise ValueError(
                    f"{type(self).__name__} {self.name!r}: the student has {student_layers} decoder layers, the "
                    f"teacher {teacher_layers}. Give layer_map=[...], the teacher layer of each student layer, e.g. "
                    f"{list(range(teacher_layers - student_layers, teacher_layers))} for the teacher's last ones.")
            return list(range(student_layers))
        if len(self.layer_map) != student_layers or not all(0 <= i < teacher_layers for i in self.layer_map):
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: layer_map={self.layer_map} must give one teacher layer "
                f"(0..{teacher_layers - 1}) for each of the student's {student_layers} decoder layers.")
        return list(self.layer_map)

    def query_loss(self, student: QueryOutputs, teacher: QueryOutputs, batch: DistillBatch) -> Tensor | dict:
        """A scalar or a dict of named scalars, named ``loss_<name>[_<key>]`` by :meth:`forward`."""
        raise NotImplementedError(f"{type(self).__name__} must implement query_loss()")

    def forward(self, student: QueryOutputs, teacher: QueryOutputs, batch: DistillBatch) -> dict[str, Tensor]:
        """Named, weighted losses. Computed in fp32 whatever autocast is active."""
        scale = self.loss_weight * self.loss_scale
        with torch.autocast(device_type=student.cls_scores.device.type, enabled=False):
            out = self.query_loss(student, teacher, batch)
        return {self.loss_name(key, ""): value * scale
                for key, value in (out.items() if isinstance(out, dict) else [("", out)])}
