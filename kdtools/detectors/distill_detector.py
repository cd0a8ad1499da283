"""The distillation detector: a student, a frozen teacher, taps and distillers.

Data flows one way: batch -> student forward (its own losses, taps recorded with grad) and teacher forward
(eval mode, inference mode, only as deep as the taps need) -> each distiller -> named losses joined to the
student's loss dict. ``predict`` and ``tensor`` modes run the student alone.

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

from kdtools.detectors.levels import match_levels
from kdtools.detectors.taps import TapRecorder
from kdtools.detectors.teacher import build_teacher, load_model_config, teacher_spec
from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.registry import build_distiller

STAGE_KEYS = {"epochs", "teacher", "distillers"}


def run_to_depth(model: nn.Module, inputs: Tensor, data_samples: list[DetDataSample], paths: Sequence[str]) -> None:
    """Run ``model`` only as far as ``paths`` need: backbone, backbone + neck, or the whole network."""
    tops = {path.split(".")[0] for path in paths}
    if tops <= {"backbone"}:
        model.backbone(inputs)
    elif tops <= {"backbone", "neck"}:
        model.extract_feat(inputs)
    else:
        model._forward(inputs, data_samples)


def shapes_of(levels: Sequence[Tensor]) -> list[tuple[int, int, int]]:
    return [(int(t.shape[1]), int(t.shape[2]), int(t.shape[3])) for t in levels]


class InputAdapter(nn.Module):
    """Re-normalise student inputs for a teacher trained with another mean/std/channel order."""

    def __init__(self, student_dp: dict, teacher_dp: dict) -> None:
        super().__init__()
        s_mean, s_std = _norm(student_dp)
        t_mean, t_std = _norm(teacher_dp)
        flip = bool(student_dp.get("bgr_to_rgb", False)) != bool(teacher_dp.get("bgr_to_rgb", False))
        order = [2, 1, 0] if flip else [0, 1, 2]
        # teacher = (raw[order] - t_mean) / t_std with raw = student * s_std + s_mean
        scale = s_std[order] / t_std
        shift = (s_mean[order] - t_mean) / t_std
        self.identity = not flip and torch.equal(scale, torch.ones(3)) and torch.equal(shift, torch.zeros(3))
        self.order = order
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, inputs: Tensor) -> Tensor:
        if self.identity:
            return inputs
        return inputs[:, self.order] * self.scale.to(inputs.dtype) + self.shift.to(inputs.dtype)


def _norm(dp: dict) -> tuple[Tensor, Tensor]:
    mean = torch.tensor(dp.get("mean") or [0.0, 0.0, 0.0], dtype=torch.float32)
    std = torch.tensor(dp.get("std") or [1.0, 1.0, 1.0], dtype=torch.float32)
    return mean, std


@MODELS.register_module()
class DistillDetector(BaseDetector):
    """Student + frozen teacher + distillers.

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
        data_preprocessor: dict | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        student = ConfigDict(student)
        super().__init__(data_preprocessor=data_preprocessor or student.get("data_preprocessor"), init_cfg=init_cfg)
        self.student = MODELS.build(student)
        self.stages = [self._check_stage(i, stage) for i, stage in enumerate(stages or [])]
        if teacher is None and not self.stages:
            raise ValueError("A distillation config needs teacher=dict(config=..., checkpoint=...) or stages=[...].")
        self.teacher_specs = [teacher_spec(s["teacher"]) for s in self.stages] or [teacher_spec(teacher)]
        self.distillers = nn.ModuleList(build_distiller(cfg) for cfg in distillers)
        if not len(self.distillers):
            raise ValueError("distill=[] is empty: name at least one distiller, e.g. dict(type='PKD').")
        self._check_unique_names()
        self.register_buffer("stage", torch.tensor(0))
        self.inherit_teacher = inherit_teacher
        self.teacher_half = teacher_half
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        self.nonfinite = nonfinite
        self.probe_size = probe_size
        self._student_dp = dict(student.get("data_preprocessor") or {})
        self.student_taps = TapRecorder(self.student, self._paths("student_tap"), "student")
        self.student_shapes = self._probe(self.student, self.student_taps)
        self.loaded_stage = -1
        self.set_stage(0)
        for index in range(1, len(self.teacher_specs)):
            if self.teacher_specs[index] not in self.teacher_specs[:index]:  # each distinct later teacher once
                self._check_stage_teacher(index)

    # ----------------------------------------------------------------- teacher
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "teacher":  # keep the teacher out of the module tree
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> DistillDetector:
        if getattr(self, "teacher", None) is not None:
            self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True) -> DistillDetector:
        super().train(mode)
        if getattr(self, "teacher", None) is not None:
            self.teacher.eval()
        return self

    def _load_teacher(self, index: int) -> tuple[nn.Module, TapRecorder, InputAdapter]:
        spec = self.teacher_specs[index]
        teacher = build_teacher(spec["config"], spec["checkpoint"], spec.get("cfg_options"))
        device = next(self.student.parameters()).device
        teacher.to(device)
        taps = TapRecorder(teacher, self._paths("teacher_tap"), "teacher")
        teacher_dp = dict(load_model_config(spec["config"], spec.get("cfg_options")).get("data_preprocessor") or {})
        return teacher, taps, InputAdapter(self._student_dp, teacher_dp).to(device)

    def set_stage(self, index: int) -> None:
        """Load the teacher of stage ``index`` (if its spec differs from the loaded one's) and apply the distiller
        settings up to that stage."""
        teacher_index = min(index, len(self.teacher_specs) - 1)
        if self.loaded_stage < 0 or self.teacher_specs[teacher_index] != self.teacher_specs[self.loaded_stage]:
            MMLogger.get_current_instance().info(
                f"Stage {index}: teacher {self.teacher_specs[teacher_index]['checkpoint']}")
            self.teacher = None  # release the previous teacher before loading the next
            self.teacher, self.teacher_taps, self.teacher_input = self._load_teacher(teacher_index)
            for d, levels in zip(self.distillers, self._match(self._probe(self.teacher, self.teacher_taps))):
                d.setup(levels)
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

    def distiller(self, name: str) -> BaseDistiller:
        for d in self.distillers:
            if d.name == name:
                return d
        raise KeyError(f"No distiller named {name!r}; the distillers are {[d.name for d in self.distillers]}.")

    # ------------------------------------------------------------------ set-up
    def _paths(self, attr: str) -> list[str]:
        return list(dict.fromkeys(p for d in self.distillers for p in getattr(d, attr)))

    def _check_unique_names(self) -> None:
        names = [d.name for d in self.distillers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Distiller names {duplicates} repeat; give each its own name=... in the config.")

    @staticmethod
    def _check_stage(index: int, stage: dict) -> dict:
        unknown = set(stage) - STAGE_KEYS
        if unknown or "epochs" not in stage or "teacher" not in stage:
            raise ValueError(
                f"Stage {index} {dict(stage)}: a stage is dict(epochs=E, teacher=dict(config, checkpoint), "
                f"distillers=dict(<name>=dict(<setting>=value))); unknown keys: {sorted(unknown)}."
            )
        return dict(stage)

    def _probe_inputs(self) -> tuple[Tensor, list[DetDataSample]]:
        size = self.probe_size
        device = next(self.student.parameters()).device
        sample = DetDataSample(
            metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                          batch_input_shape=(size, size), scale_factor=(1.0, 1.0))
        )
        return torch.zeros(1, 3, size, size, device=device), [sample]

    @torch.no_grad()
    def _probe(self, model: nn.Module, taps: TapRecorder) -> dict[str, list[tuple[int, int, int]]]:
        inputs, samples = self._probe_inputs()
        was_training = model.training
        model.eval()
        try:
            with taps.recording():
                run_to_depth(model, inputs, samples, taps.paths)
            return {path: shapes_of(taps.levels([path])) for path in taps.paths}
        finally:
            model.train(was_training)

    def _match(self, teacher_shapes: dict[str, list[tuple[int, int, int]]]) -> list[list[LevelPair]]:
        """Each distiller's level pairs between the student's and the given teacher's tapped shapes."""
        return [
            match_levels(
                d,
                [s for p in d.student_tap for s in self.student_shapes[p]],
                [s for p in d.teacher_tap for s in teacher_shapes[p]],
                self.probe_size,
            )
            for d in self.distillers
        ]

    def _check_stage_teacher(self, index: int) -> None:
        """A later stage's teacher must fit the distillers as built (same levels, channels and sizes)."""
        teacher, taps, _ = self._load_teacher(index)
        for d, levels in zip(self.distillers, self._match(self._probe(teacher, taps))):
            d.check_same_levels(levels, f"stage {index}'s teacher")

    def init_weights(self) -> None:
        super().init_weights()
        if self.inherit_teacher:
            self._inherit_from_teacher()

    def _inherit_from_teacher(self) -> None:
        prefixes = None if self.inherit_teacher is True else tuple(self.inherit_teacher)
        teacher_state = self.teacher.state_dict()
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
    def teacher_levels(self, inputs: Tensor, data_samples: list[DetDataSample]) -> dict[str, list[Tensor]]:
        """Tapped teacher features, computed in inference mode and returned as ordinary tensors."""
        half = torch.float16 if inputs.device.type == "cuda" else torch.bfloat16
        with torch.inference_mode(), torch.autocast(inputs.device.type, dtype=half, enabled=self.teacher_half):
            with self.teacher_taps.recording():
                run_to_depth(self.teacher, self.teacher_input(inputs), data_samples, self.teacher_taps.paths)
            levels = {path: self.teacher_taps.levels([path]) for path in self.teacher_taps.paths}
        return {path: [t.clone() for t in ts] for path, ts in levels.items()}

    def loss(self, batch_inputs: Tensor, batch_data_samples: list[DetDataSample]) -> dict[str, Tensor]:
        with self.student_taps.recording():
            losses = self.student.loss(batch_inputs, batch_data_samples)
        teacher = self.teacher_levels(batch_inputs, batch_data_samples)
        batch = DistillBatch.from_data_samples(batch_data_samples, tuple(batch_inputs.shape[-2:]))
        distill_losses = {}
        for d in self.distillers:
            student_feats = self.student_taps.levels(d.student_tap)
            teacher_feats = [t for p in d.teacher_tap for t in teacher[p]]
            distill_losses.update(d(student_feats, teacher_feats, batch))
        return {**losses, **self._guard_nonfinite(distill_losses)}

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
        # Zero losses that keep every distiller parameter in the graph (no unused parameters under DDP).
        zero = sum((p * 0).sum() for p in self.distillers.parameters())
        return {key: torch.zeros_like(value) + zero for key, value in losses.items()}

    def predict(self, batch_inputs: Tensor, batch_data_samples: list[DetDataSample], rescale: bool = True) -> list:
        return self.student.predict(batch_inputs, batch_data_samples, rescale=rescale)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: list[DetDataSample] | None = None) -> Any:
        return self.student._forward(batch_inputs, batch_data_samples)

    def extract_feat(self, batch_inputs: Tensor) -> Any:
        return self.student.extract_feat(batch_inputs)
