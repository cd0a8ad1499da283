"""The distiller interface.

A distiller receives the tapped student and teacher features (one list per tap, one entry per level), picks
its levels, aligns the student side with a connector where asked, and returns named losses. It never
reaches into the detectors; what it needs from the batch comes through :class:`DistillBatch`.

Writing one::

    @DISTILLERS.register_module()
    class L2(BaseDistiller):
        '''Mean squared error between the features.'''

        def level_loss(self, student, teacher, batch, index):
            return F.mse_loss(student, teacher)

``level_loss`` gets fp32 N x C x H x W tensors of equal shape for level ``self.levels[index]`` and returns
a scalar or a dict of named scalars. The base class applies ``loss_weight`` (a number, or ``'auto'``: see
:mod:`kdtools.calibration`) and the schedule's ``loss_scale``, and names the results
``loss_<name>[_<key>]_<level>``, e.g. ``loss_fgd_fg_p3``. Per-level trainable modules are built in
``build_modules`` once the channels are known. Keys listed in ``unweighted`` (a loss that trains only the
distiller's own modules, e.g. IE-KD's auto-encoder reconstruction) are returned as they are: neither
``loss_weight``, the schedule nor calibration touch them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from kdtools.calibration import LossCalibration
from kdtools.modules.connectors import Connector
from kdtools.modules.gt_masks import background_mask, foreground_mask
from kdtools.schedules import LossSchedule

if TYPE_CHECKING:
    from kdtools.detectors.taps import Records


@dataclass(frozen=True)
class LevelPair:
    """One student level matched with one teacher level (shapes as seen by the detector's probe)."""

    name: str
    student_index: int
    teacher_index: int
    student_channels: int
    teacher_channels: int
    student_size: tuple[int, int]
    teacher_size: tuple[int, int]


class DistillBatch:
    """What a distiller may need from the batch: GT boxes, image shapes, cached masks and the detection loss.

    ``maps`` lets one distiller hand a per-level map to the distillers after it (e.g. RND's novelty map):
    ``batch.maps[key][level_name] -> N x H x W``. ``cache`` keeps what several distillers of a step share
    (a head's assigner results, see :mod:`kdtools.distillers.head`). ``gt_labels`` and ``img_metas`` (the
    data samples' metainfo) are there for methods that assign targets the way the head does.
    """

    def __init__(self, gt_bboxes: list[Tensor], img_shapes: list[tuple[int, int]], input_shape: tuple[int, int],
                 gt_labels: list[Tensor] | None = None, img_metas: list[dict] | None = None):
        self.gt_bboxes = gt_bboxes
        self.gt_labels = gt_labels
        self.img_shapes = img_shapes
        self.img_metas = img_metas
        self.input_shape = tuple(input_shape)
        self.cache: dict[tuple, object] = {}
        self.maps: dict[str, dict[str, Tensor]] = {}
        self.detection_loss: Tensor | None = None  # the student's total detection loss of this step (detached)
        self._fg_cache: dict[tuple[int, int], Tensor] = {}

    @classmethod
    def from_data_samples(cls, data_samples: Sequence, input_shape: tuple[int, int]) -> DistillBatch:
        gt_bboxes = [sample.gt_instances.bboxes for sample in data_samples]
        gt_labels = [sample.gt_instances.labels for sample in data_samples]
        img_shapes = [tuple(sample.metainfo.get("img_shape", input_shape)) for sample in data_samples]
        img_metas = [sample.metainfo for sample in data_samples]
        return cls(gt_bboxes, img_shapes, input_shape, gt_labels, img_metas)

    def foreground(self, size: Sequence[int]) -> Tensor:
        """N x H x W inverse-area foreground mask (smallest box wins), cached per size."""
        key = (int(size[0]), int(size[1]))
        if key not in self._fg_cache:
            self._fg_cache[key] = foreground_mask(self.gt_bboxes, self.input_shape, key)
        return self._fg_cache[key]

    def background(self, size: Sequence[int]) -> Tensor:
        """N x H x W background mask, normalised to sum 1 per image."""
        return background_mask(self.foreground(size))

    def inside_boxes(self, size: Sequence[int]) -> Tensor:
        """N x H x W indicator of cells inside any GT box."""
        return (self.foreground(size) > 0).float()


class BaseDistiller(BaseModule):
    """Base class of all distillers.

    Args:
        loss_weight: multiplies every loss of this distiller; ``'auto'`` measures it over the first training
            iterations so that this distiller's loss is ``auto_ratio`` times the detection loss
            (:mod:`kdtools.calibration`).
        auto_ratio: with ``loss_weight='auto'``, the distillation / detection loss ratio to reach; default: the
            method's ``auto_ratio`` (the ratio of its published setting).
        auto_iters: with ``loss_weight='auto'``, the iterations measured before the weight is fixed.
        student_tap: module path(s) in the student whose outputs are distilled; a module returning a tuple
            (the neck) gives one level per entry. Default: the neck outputs.
        teacher_tap: the same in the teacher; defaults to ``student_tap``.
        student_levels: indices of the tapped student levels to use; default: those matched to a teacher
            level of the same stride.
        teacher_levels: the matching teacher indices, one per student level.
        connector: None, 'conv1x1' (channels, and size if needed) or 'resize' (size only).
        name: the name in loss keys; defaults to the lower-case class name.
        schedule: a loss-weight schedule (see :class:`kdtools.schedules.LossSchedule`), e.g.
            ``dict(warmup_iters=500, decay='cosine', stop_epoch=20)``.
    """

    settable: tuple[str, ...] = ("loss_weight",)
    auto_ratio: float | None = None
    training_only: tuple[str, ...] = ()  # attributes holding per-level modules used in training only
    unweighted: tuple[str, ...] = ()  # level_loss keys of losses that train the distiller's own modules only

    def __init__(
        self,
        loss_weight: float | str = 1.0,
        auto_ratio: float | None = None,
        auto_iters: int = 50,
        student_tap: str | Sequence[str] = "neck",
        teacher_tap: str | Sequence[str] | None = None,
        student_levels: Sequence[int] | None = None,
        teacher_levels: Sequence[int] | None = None,
        connector: str | None = None,
        name: str | None = None,
        schedule: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.name = name or type(self).__name__.lower()
        self.calibration = self._calibration(loss_weight, auto_ratio, auto_iters)
        self.loss_weight = 1.0 if self.calibration is not None else float(loss_weight)
        self.student_tap = _as_paths(student_tap)
        self.teacher_tap = _as_paths(teacher_tap) if teacher_tap is not None else self.student_tap
        self.student_levels = list(student_levels) if student_levels is not None else None
        self.teacher_levels = list(teacher_levels) if teacher_levels is not None else None
        self.connector = connector
        self.schedule = LossSchedule.from_config(schedule)
        self.loss_scale = 1.0
        self.levels: list[LevelPair] = []
        self.connectors = nn.ModuleList()

    def setup(self, levels: Sequence[LevelPair]) -> None:
        """Fix the matched levels, check they can be compared, and build connectors and per-level modules.

        Called again when a stage brings another teacher: the levels must then fit the modules already built
        (the teacher-side indices may change).
        """
        if self.levels:
            self.check_same_levels(levels, "the new teacher")
            self.levels = list(levels)
            return
        self.levels = list(levels)
        for level in self.levels:
            self._check_alignment(level)
        if self.connector is not None:
            self.connectors = nn.ModuleList(
                Connector(self.connector, lv.student_channels, lv.teacher_channels) for lv in self.levels
            )
        self.build_modules(self.levels)

    def check_same_levels(self, levels: Sequence[LevelPair], source: str) -> None:
        """Raise unless ``levels`` have the names, channels and sizes this distiller was built for."""
        def shape(lv: LevelPair) -> tuple:
            return lv.name, lv.student_channels, lv.teacher_channels, lv.student_size, lv.teacher_size

        if [shape(lv) for lv in levels] != [shape(lv) for lv in self.levels]:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} was built for levels {[shape(lv) for lv in self.levels]} "
                f"(name, student C, teacher C, student HxW, teacher HxW); {source} gives "
                f"{[shape(lv) for lv in levels]}. Fix the levels with student_levels=[...] so every teacher of "
                "the run matches them."
            )

    def apply_settings(self, **settings: float) -> None:
        """Change settable attributes (stage-wise training); unknown names raise."""
        unknown = sorted(set(settings) - set(self.settable))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no settable {unknown}; settable: {list(self.settable)}.")
        for key, value in settings.items():
            setattr(self, key, value)

    def build_modules(self, levels: Sequence[LevelPair]) -> None:
        """Build trainable per-level modules (generation blocks, ...). Called once the channels are known."""

    def level_loss(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> Tensor | dict:
        raise NotImplementedError(f"{type(self).__name__} must implement level_loss() or forward()")

    def visual_maps(self, student: Tensor, teacher: Tensor, batch: DistillBatch, index: int) -> dict[str, Tensor]:
        """Maps (N x H x W) this distiller uses on level ``index``, for ``tools/visualize.py``; none by default."""
        return {}

    def student_taps(self) -> list[str]:
        """What this distiller needs recorded in the student."""
        return self.student_tap

    def teacher_taps(self) -> list[str]:
        """What this distiller needs recorded in the teacher (the teacher runs only as deep as these)."""
        return self.teacher_tap

    def tap_settings(self) -> dict[str, Any]:
        """The settings that decide the taps, named when a tap is not a module of the model."""
        return {"student_tap": self.student_tap, "teacher_tap": self.teacher_tap}

    def inputs(self, student: Records, teacher: Records) -> tuple[list[Tensor], list[Tensor]]:
        """The arguments of ``forward`` besides the batch: the tapped student and teacher levels."""
        return student.levels(self.student_tap), teacher.levels(self.teacher_tap)

    def training_only_blocks(self) -> list[list[nn.Module]]:
        """Per matched level, the modules named in ``training_only`` (one per attribute); [] if none."""
        if not self.training_only:
            return []
        return [list(level) for level in zip(*(getattr(self, attr) for attr in self.training_only))]

    def aligned_levels(self, student: Sequence[Tensor], teacher: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """The (student, teacher) pair of each matched level in fp32, the student passed through its connector."""
        pairs = []
        for i, level in enumerate(self.levels):
            s, t = student[level.student_index].float(), teacher[level.teacher_index].float()
            if len(self.connectors):
                s = self.connectors[i](s, tuple(t.shape[-2:]))
            pairs.append((s, t))
        return pairs

    def _calibration(self, loss_weight: float | str, auto_ratio: float | None, iters: int) -> LossCalibration | None:
        if loss_weight != "auto":
            if isinstance(loss_weight, str):
                raise ValueError(f"loss_weight must be a number or 'auto', got {loss_weight!r}.")
            if auto_ratio is not None:
                raise ValueError(f"auto_ratio={auto_ratio} is used with loss_weight='auto' only; add it or drop "
                                 "auto_ratio.")
            return None
        ratio = auto_ratio if auto_ratio is not None else self.auto_ratio
        if ratio is None:
            raise ValueError(f"{type(self).__name__} has no published loss ratio to calibrate to: with "
                             "loss_weight='auto' give auto_ratio=<distillation / detection loss>, e.g. 0.5.")
        return LossCalibration(ratio, iters, self.name)

    def forward(self, student: Sequence[Tensor], teacher: Sequence[Tensor], batch: DistillBatch) -> dict[str, Tensor]:
        """Named, weighted losses over all matched levels. Computed in fp32 whatever autocast is active."""
        losses: dict[str, Tensor] = {}
        own: dict[str, Tensor] = {}
        with torch.autocast(device_type=student[0].device.type, enabled=False):
            for i, (s, t) in enumerate(self.aligned_levels(student, teacher)):
                out = self.level_loss(s, t, batch, i)
                for key, value in (out.items() if isinstance(out, dict) else [("", out)]):
                    (own if key in self.unweighted else losses)[self.loss_name(key, self.levels[i].name)] = value
        scale = self.loss_weight * self.loss_scale
        if self.calibration is not None and losses:
            scale = self.calibrated_weight(losses, batch).float() * scale
        return {**{key: value * scale for key, value in losses.items()}, **own}

    def log_values(self) -> dict[str, Tensor]:
        """Scalars to log beside the losses (names without 'loss', so not optimised): the calibrated weight."""
        return {f"{self.name}_weight": self.calibration.weight.float()} if self.calibration is not None else {}

    def calibrated_weight(self, losses: dict[str, Tensor], batch: DistillBatch) -> Tensor:
        """``loss_weight='auto'``: the weight measured so far (fixed once calibration is done)."""
        if not self.training or self.calibration.done:
            return self.calibration.weight
        if batch.detection_loss is None:
            raise RuntimeError(f"{type(self).__name__} {self.name!r} with loss_weight='auto' needs the student's "
                               "detection loss in batch.detection_loss (DistillDetector.loss sets it).")
        return self.calibration.update(torch.stack(list(losses.values())).sum(), batch.detection_loss)

    def loss_name(self, key: str, level: str) -> str:
        return "_".join(part for part in ("loss", self.name, key, level) if part)

    def _check_alignment(self, level: LevelPair) -> None:
        where = (f"{type(self).__name__} level {level.name} "
                 f"(student #{level.student_index}, teacher #{level.teacher_index})")
        if level.student_channels != level.teacher_channels and self.connector != "conv1x1":
            raise ValueError(
                f"{where}: student has {level.student_channels} channels, teacher {level.teacher_channels}. "
                "Add connector='conv1x1' to this distiller's config."
            )
        if level.student_size != level.teacher_size and self.connector is None:
            raise ValueError(
                f"{where}: student feature is {level.student_size}, teacher {level.teacher_size}. "
                "Add connector='resize' (or 'conv1x1') to this distiller's config, or match levels of equal "
                "stride with student_levels/teacher_levels."
            )


def _as_paths(tap: str | Sequence[str]) -> list[str]:
    return [tap] if isinstance(tap, str) else list(tap)
