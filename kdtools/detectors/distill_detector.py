"""The distillation detector: a student, a frozen teacher and distillers, joined by records.

Data flows one way: batch -> student forward (its own losses; its taps recorded with grad) and
:class:`~kdtools.detectors.teacher.Teacher` records (eval mode, inference mode, only as deep as the
distillers declared) -> each distiller, given ``d.inputs(student_records, teacher_records)`` and the batch
-> named losses joined to the student's loss dict. ``predict`` and ``tensor`` modes run the student alone.

What is recorded is what the distillers declare (``student_taps()``/``teacher_taps()``): feature maps for
feature distillers, dense-head outputs and intermediate head features for head distillers, a DETR's decoder
and head calls for query distillers (:mod:`kdtools.detectors.queries`).

The teacher is kept outside the module tree: it is not in ``state_dict()`` (so never in training
checkpoints), not in ``parameters()`` (so never in the optimizer or DDP), and stays in eval mode whatever
``train()`` is called with. ``.to()``/``.cuda()``/``.half()`` still move it along with the student.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub, MMLogger
from torch import Tensor, nn

from kdtools.calibration import detection_loss
from kdtools.detectors.controls import build_control, control_spec
from kdtools.detectors.levels import map_shapes, match_levels
from kdtools.detectors.sources import StalePeer
from kdtools.detectors.taps import Records, TapRecorder, run_to_depth
from kdtools.detectors.teacher import Teacher, probe, teacher_spec
from kdtools.distillers.base import BaseDistiller, DistillBatch
from kdtools.distillers.head import HeadDistiller
from kdtools.distillers.query import QueryDistiller
from kdtools.modules.dense_heads import recorded_targets
from kdtools.registry import build_distiller

STAGE_KEYS = {"epochs", "teacher", "distillers"}
Distiller = BaseDistiller | HeadDistiller | QueryDistiller


def check_stage(index: int, stage: dict) -> dict:
    """Stage ``index`` of ``stages=[...]``, its keys checked."""
    unknown = set(stage) - STAGE_KEYS
    if unknown or "epochs" not in stage or "teacher" not in stage:
        raise ValueError(
            f"Stage {index} {dict(stage)}: a stage is dict(epochs=E, teacher=dict(config, checkpoint), "
            f"distillers=dict(<name>=dict(<setting>=value))); unknown keys: {sorted(unknown)}."
        )
    return dict(stage)


def teacher_specs(teacher: dict | None, stages: Sequence[dict]) -> list[dict]:
    """The teacher of each (checked) stage, or the one teacher of a config without stages, validated."""
    if teacher is None and not stages:
        raise ValueError("A distillation config needs teacher=dict(config=..., checkpoint=...) or stages=[...].")
    return [teacher_spec(s["teacher"]) for s in stages] or [teacher_spec(teacher)]


def check_distillers(distillers: Sequence[dict]) -> Sequence[dict]:
    """The distiller configs, at least one."""
    if not distillers:
        raise ValueError("distill=[] is empty: name at least one distiller, e.g. dict(type='PKD').")
    return distillers


def in_graph(losses: dict[str, Tensor | list[Tensor]], zero: Tensor) -> dict[str, Tensor | list[Tensor]]:
    """``losses`` with ``zero`` (a zero that depends on parameters) added to the first of them: the same values,
    and no parameter left out of the graph (DDP needs every parameter used)."""
    key = next(k for k in losses if "loss" in k)
    value = losses[key]
    added = [value[0] + zero, *value[1:]] if isinstance(value, (list, tuple)) else value + zero
    return {**losses, key: added}


@MODELS.register_module()
class DistillDetector(BaseDetector):
    """Student + knowledge sources + distillers.

    The sources (:mod:`kdtools.detectors.sources`) are the frozen teacher, a control in its place, or the stale
    copies of codistillation's other peers; the distillers read the records of each in the same way.

    Args:
        student: any mmdet detector config.
        distillers: distiller configs (``type`` from the DISTILLERS registry).
        teacher: ``dict(config=..., checkpoint=..., cfg_options=None)``; ``mmdet::`` configs are allowed.
            Optional when ``stages`` name the teachers.
        stages: stage-wise distillation, e.g. ``[dict(epochs=6, teacher=..., distillers=dict(dfmsd=dict(
            enhance=0.5))), dict(epochs=6, teacher=...)]``. Switched at epoch boundaries by ``StageHook``;
            distiller settings of a stage stay in force until a later stage changes them.
        inherit_teacher: copy the teacher's weights outside the backbone (neck, heads) into the student
            at initialisation (MGD/FGD's inheriting strategy). True for every non-backbone key, or a list
            of key prefixes such as ``['neck', 'bbox_head']``.
        teacher_half: run the teacher in half precision (fp16 on GPU, bf16 on CPU).
        nonfinite: what a NaN/Inf distillation loss does: ``'raise'`` stops with the distiller, level and
            iteration named; ``'skip'`` logs the same and drops the distillation losses of that step.
        probe_size: side of the blank image used at build time to read level shapes.
        teacher_control: a control in place of the teacher (:mod:`kdtools.detectors.controls`): ``'random'``,
            ``'shuffled'``, ``'class_prior'``, ``'label_smoothing'`` or ``dict(type=..., <option>=...)``.
        peers: codistillation (:mod:`kdtools.codistill`): the model configs of the other peers, whose stale copies
            are the knowledge sources instead of a teacher; their weights arrive by ``PeerExchangeHook``. Each
            distillation loss is the mean of its losses against every peer.
    """

    def __init__(
        self,
        student: dict,
        distillers: Sequence[dict],
        teacher: dict | None = None,
        stages: Sequence[dict] | None = None,
        inherit_teacher: bool | Sequence[str] = False,
        teacher_half: bool = False,
        nonfinite: str = "raise",
        probe_size: int = 256,
        teacher_control: str | dict | None = None,
        peers: Sequence[dict] | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        student = ConfigDict(student)
        super().__init__(data_preprocessor=data_preprocessor or student.get("data_preprocessor"), init_cfg=init_cfg)
        self.student = MODELS.build(student)
        self.stages = [check_stage(i, stage) for i, stage in enumerate(stages or [])]
        if peers and (teacher is not None or self.stages or teacher_control is not None or inherit_teacher):
            raise ValueError("peers=[...] (codistillation) distils from the other peers: leave out teacher, stages, "
                             "teacher_control and inherit_teacher.")
        self.teacher_specs = [] if peers else teacher_specs(teacher, self.stages)
        self.distillers = nn.ModuleList(build_distiller(cfg) for cfg in check_distillers(distillers))
        self._check_unique_names()
        for d in self.distillers:
            if isinstance(d, QueryDistiller):
                d.check_detector(self.student, "student")
        self.register_buffer("stage", torch.tensor(0))
        self.inherit_teacher = inherit_teacher
        self.teacher_half = teacher_half
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        self.nonfinite = nonfinite
        self.probe_size = probe_size
        self.teacher_control = control_spec(teacher_control)
        self._student_dp = dict(student.get("data_preprocessor") or {})
        self.student_taps = TapRecorder(self.student, self._taps("student"), "student")
        self.student_probe = probe(self.student, self.student_taps, probe_size)
        self.target_heads = list(dict.fromkeys(  # heads whose own target assignment the distillers reuse
            self.student_taps.modules[d.student_head] for d in self.distillers
            if isinstance(d, HeadDistiller) and d.uses_targets))
        self.teacher: Teacher | None = None
        self.peers: list[StalePeer] = []
        self.distill_active = True  # PeerExchangeHook turns it off until the burn-in ends
        self.loaded_stage = -1
        if peers:
            self._build_peers(peers)
        else:
            self.set_stage(0)
        for index in range(1, len(self.teacher_specs)):
            if self.teacher_specs[index] not in self.teacher_specs[:index]:  # each distinct later teacher once
                self._check_stage_teacher(index)

    # ----------------------------------------------------------------- teacher
    @property
    def sources(self) -> list[Teacher]:
        """The knowledge sources the distillers read: the teacher (or its control), or the stale peers."""
        teacher = getattr(self, "teacher", None)  # not yet set while nn.Module.__init__ moves the student
        return getattr(self, "peers", None) or ([teacher] if teacher is not None else [])

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> DistillDetector:
        for source in self.sources:
            source.apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> DistillDetector:
        super().train(mode)
        for source in self.sources:
            source.model.eval()
        return self

    def _build_peers(self, peers: Sequence[dict]) -> None:
        """Stale copies of the other peers (randomly initialised until the first exchange); the distillers are
        fitted to the first one's records and the others are checked against them."""
        device = next(self.student.parameters()).device
        for index, config in enumerate(peers):
            peer = StalePeer(dict(config), self._taps("teacher"), self._student_dp, self.teacher_half, device)
            self.peers.append(peer)
            self._setup_distillers(peer.probe(self.probe_size), None if index == 0 else f"peer model {index}")

    def _load_teacher(self, index: int) -> Teacher:
        device = next(self.student.parameters()).device
        args = (self.teacher_specs[index], self._taps("teacher"), self._student_dp, self.teacher_half, device)
        return build_control(self.teacher_control, *args) if self.teacher_control else Teacher(*args)

    def set_stage(self, index: int) -> None:
        """Load the teacher of stage ``index`` (if its spec differs from the loaded one's) and apply the distiller
        settings up to that stage."""
        teacher_index = min(index, len(self.teacher_specs) - 1)
        if self.loaded_stage < 0 or self.teacher_specs[teacher_index] != self.teacher_specs[self.loaded_stage]:
            MMLogger.get_current_instance().info(
                f"Stage {index}: teacher {self.teacher_specs[teacher_index]['checkpoint']}")
            self.teacher = None  # release the previous teacher before loading the next
            self.teacher = self._load_teacher(teacher_index)
            self._setup_distillers(self.teacher.probe(self.probe_size))
        self.loaded_stage = teacher_index
        for stage in self.stages[: index + 1]:
            for name, settings in stage.get("distillers", {}).items():
                self.distiller(name).apply_settings(**settings)
        self.stage.fill_(index)

    def stage_at_epoch(self, epoch: int) -> int:
        """The stage an epoch (0-based) belongs to; the last stage continues past the declared epochs."""
        end = 0
        for index, stage in enumerate(self.stages):
            end += stage["epochs"]
            if epoch < end:
                return index
        return max(len(self.stages) - 1, 0)

    def distiller(self, name: str) -> Distiller:
        for d in self.distillers:
            if d.name == name:
                return d
        raise KeyError(f"No distiller named {name!r}; the distillers are {[d.name for d in self.distillers]}.")

    # ------------------------------------------------------------------ set-up
    def _taps(self, side: str) -> dict[str, str]:
        """What the distillers declared they need recorded on ``side`` ('student' or 'teacher'), each with the
        distiller and settings that asked for it (named if the module is missing)."""
        taps: dict[str, str] = {}
        for d in self.distillers:
            settings = ", ".join(f"{key}={value!r}" for key, value in d.tap_settings().items())
            for tap in getattr(d, f"{side}_taps")():
                taps.setdefault(tap, f"Distiller {d.name!r} ({type(d).__name__}) asks for it; check its {settings}.")
        return taps

    def _check_unique_names(self) -> None:
        names = [d.name for d in self.distillers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Distiller names {duplicates} repeat; give each its own name=... in the config.")

    def _setup_distillers(self, teacher: Records, source: str | None = None) -> None:
        """Fit every distiller to the student's and this teacher's probe records: match feature levels, check
        head types. ``source`` names a later teacher, which must fit the distillers as built."""
        for d in self.distillers:
            if isinstance(d, HeadDistiller):
                d.check_heads(self.student_probe, teacher)
                continue
            if isinstance(d, QueryDistiller):
                d.check_pair(self.student_probe, teacher)
                continue
            levels = match_levels(d, map_shapes(self.student_probe, d.student_tap, d),
                                  map_shapes(teacher, d.teacher_tap, d), self.probe_size)
            if source is None:
                d.setup(levels)
            else:
                d.check_same_levels(levels, source)

    def _check_stage_teacher(self, index: int) -> None:
        """A later stage's teacher must fit the distillers as built (same levels, channels and sizes)."""
        self._setup_distillers(self._load_teacher(index).probe(self.probe_size), f"stage {index}'s teacher")

    def init_weights(self) -> None:
        super().init_weights()
        if self.inherit_teacher:
            self._inherit_from_teacher()

    def _inherit_from_teacher(self) -> None:
        prefixes = None if self.inherit_teacher is True else tuple(self.inherit_teacher)
        teacher_state = self.teacher.model.state_dict()
        student_state = self.student.state_dict()
        keys = [k for k in student_state if (k.startswith(prefixes) if prefixes else not k.startswith("backbone."))]
        mismatched = [k for k in keys if k not in teacher_state or teacher_state[k].shape != student_state[k].shape]
        if mismatched:
            raise ValueError(
                f"inherit_teacher: the teacher lacks or mis-shapes {len(mismatched)} student keys, e.g. "
                f"{mismatched[:5]}. Inheriting needs a teacher of the same neck/head architecture."
            )
        self.student.load_state_dict({k: teacher_state[k].clone() for k in keys}, strict=False)

    # ---------------------------------------------------------------- forward
    def student_records(self, inputs: Tensor, data_samples: list[DetDataSample]) -> Records:
        """The student's records without its losses (for tools): run only as deep as the taps need."""
        with self.student_taps.recording() as records:
            run_to_depth(self.student, inputs, data_samples, self.student_taps.paths)
        return records

    def loss(self, batch_inputs: Tensor, batch_data_samples: list[DetDataSample]) -> dict[str, Tensor]:
        with self.student_taps.recording() as student, recorded_targets(self.target_heads) as targets:
            losses = self.student.loss(batch_inputs, batch_data_samples)
        if not self.distill_active:  # no source is asked (codistillation's burn-in)
            return in_graph(losses, self._zero())
        batch = DistillBatch.from_data_samples(batch_data_samples, tuple(batch_inputs.shape[-2:]))
        batch.cache.update(targets)
        batch.detection_loss = detection_loss(losses).detach()
        distill_losses, logged = {}, {}
        for source in self.sources:
            records = source.records(batch_inputs, batch_data_samples, batch)
            for d in self.distillers:
                for key, value in d(*d.inputs(student, records), batch).items():
                    distill_losses[key] = distill_losses.get(key, 0) + value / len(self.sources)
                logged.update(d.log_values())
        return {**losses, **self._guard_nonfinite(distill_losses), **logged}

    def _zero(self) -> Tensor:
        """A zero loss in which every distiller parameter takes part (none unused under DDP)."""
        zero = next(self.student.parameters()).new_zeros(())
        return zero + sum((p * 0).sum() for p in self.distillers.parameters())

    def _guard_nonfinite(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        """One device sync per step: raise on (or skip) NaN/Inf distillation losses, naming where they are."""
        finite = torch.isfinite(torch.stack([v.detach().float() for v in losses.values()]))
        if bool(finite.all()):
            return losses
        bad = [key for key, ok in zip(losses, finite.tolist()) if not ok]
        iteration = MessageHub.get_current_instance().get_info("iter")
        where = f"non-finite distillation loss at iteration {iteration}: {bad} (loss_<distiller>_[part_]<level>)"
        if self.nonfinite == "raise":
            raise FloatingPointError(
                f"{where}. Lower that distiller's loss_weight or learning rate, or set nonfinite='skip' to drop "
                "such steps' distillation losses.")
        MMLogger.get_current_instance().warning(f"{where}; this step's distillation losses are skipped.")
        zero = self._zero()
        return {key: torch.zeros_like(value) + zero for key, value in losses.items()}

    def predict(self, batch_inputs: Tensor, batch_data_samples: list[DetDataSample], rescale: bool = True) -> list:
        return self.student.predict(batch_inputs, batch_data_samples, rescale=rescale)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: list[DetDataSample] | None = None) -> Any:
        return self.student._forward(batch_inputs, batch_data_samples)

    def extract_feat(self, batch_inputs: Tensor) -> Any:
        return self.student.extract_feat(batch_inputs)
