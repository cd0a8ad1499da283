"""The frozen teacher: built from a config and a checkpoint (errors name the fix), run for its records.

:class:`Teacher` is the first knowledge source (:mod:`kdtools.detectors.sources`) and the model side of the
others: it owns the frozen model, its taps, the input adapter (the student's normalisation re-done for the
teacher), half precision, and the probe that reads the shapes of its records at build time.
``Teacher.records(inputs, samples, batch)`` runs the model in eval and inference mode only as deep as the taps
need and returns ordinary tensors. A model built elsewhere (a randomly initialised control, a stale peer) is
handed in as ``model``.
"""
from __future__ import annotations

import copy
import os.path as osp
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.runner import find_latest_checkpoint
from mmengine.utils import get_installed_path
from torch import Tensor, nn

from kdtools.checkpoint import load_checkpoint_file, state_dict_of
from kdtools.detectors.taps import Records, TapRecorder, run_to_depth

if TYPE_CHECKING:
    from kdtools.distillers.base import DistillBatch

MAX_KEYS_SHOWN = 10


def resolve_config_path(path: str) -> str:
    """A config path on disk; ``package::rel/path.py`` points into an installed OpenMMLab package."""
    if "::" not in path:
        return path
    package, relative = path.split("::", 1)
    root = get_installed_path(package)
    for folder in (osp.join(root, ".mim", "configs"), osp.join(root, "configs")):
        candidate = osp.join(folder, relative)
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"Config {path!r} not found in the installed package {package!r} ({root}).")


def load_model_config(config: str | dict, cfg_options: dict | None = None) -> ConfigDict:
    """The ``model`` section of a config file (or a model config given inline)."""
    if isinstance(config, dict):
        return ConfigDict(config)
    cfg = Config.fromfile(resolve_config_path(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg.model


def _describe(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_SHOWN])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > MAX_KEYS_SHOWN else "")


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise if ``state`` does not fit ``model`` exactly: missing, unexpected or mis-shaped keys listed."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if mis_shaped:
        problems.append(f"shape mismatches (checkpoint vs model): {_describe(mis_shaped)}")
    if problems:
        raise ValueError(
            f"The teacher checkpoint {source!r} does not match the teacher config: " + "; ".join(problems)
            + ". Check that teacher.config is the config this checkpoint was trained with."
        )


def resolve_checkpoint(config: str | dict, checkpoint: str) -> str:
    """A checkpoint file; a work dir stands for the latest checkpoint saved in it."""
    path = find_latest_checkpoint(checkpoint) if checkpoint and osp.isdir(checkpoint) else checkpoint
    if path and osp.isfile(path):
        return path
    train = f" (e.g. python tools/train.py {config})" if isinstance(config, str) else ""
    raise FileNotFoundError(
        f"Teacher checkpoint {checkpoint!r} not found. Train or download the teacher first{train} and set "
        "teacher.checkpoint to its file or work dir (or --cfg-options teacher.checkpoint=PATH)."
    )


def check_teacher_files(spec: dict) -> None:
    """Raise if a teacher's config file or checkpoint does not exist; nothing is read or built."""
    config = spec["config"]
    if isinstance(config, str) and not osp.isfile(resolve_config_path(config)):
        raise FileNotFoundError(
            f"Teacher config {config!r} not found. Set teacher.config to a config file: a path from the working "
            "directory, '{{fileDirname}}/...' for one next to the distillation config, or 'mmdet::<path>' for one "
            "of mmdet's configs."
        )
    resolve_checkpoint(config, spec["checkpoint"])


def build_teacher(config: str | dict, checkpoint: str, cfg_options: dict | None = None) -> nn.Module:
    """An mmdet detector in eval mode with frozen weights loaded strictly from ``checkpoint``."""
    checkpoint = resolve_checkpoint(config, checkpoint)
    teacher = build_model(config, cfg_options)
    state = state_dict_of(load_checkpoint_file(checkpoint))
    check_state_dict(teacher, state, checkpoint)
    teacher.load_state_dict(state, strict=True)
    return frozen(teacher)


def frozen(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with no parameter asking for gradients."""
    model.requires_grad_(False)
    return model.eval()


def build_model(config: str | dict, cfg_options: dict | None = None) -> nn.Module:
    """An mmdet detector from a config file or an inline model config, without its ``init_cfg`` (no download).
    The config is copied first: some detectors (the DETRs) write into theirs while they build."""
    from mmdet.registry import MODELS

    model_cfg = copy.deepcopy(load_model_config(config, cfg_options))
    model_cfg.pop("init_cfg", None)
    return MODELS.build(model_cfg)


def teacher_spec(value: Any) -> dict:
    """Validate a ``teacher=dict(config=..., checkpoint=...)`` entry."""
    allowed = {"config", "checkpoint", "cfg_options"}
    if not isinstance(value, dict) or "config" not in value or "checkpoint" not in value:
        raise ValueError(f"teacher must be dict(config=..., checkpoint=...), got {value!r}")
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"Unknown teacher keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(value)


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


def probe_inputs(size: int, device: torch.device) -> tuple[Tensor, list[DetDataSample]]:
    """A blank ``size`` x ``size`` image and its metadata."""
    shape = (size, size)
    sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape,
                                         scale_factor=(1.0, 1.0)))
    return torch.zeros(1, 3, size, size, device=device), [sample]


@torch.no_grad()
def probe(model: nn.Module, taps: TapRecorder, size: int) -> Records:
    """The records of ``model`` (in eval mode) on a blank image: what the taps give and their shapes."""
    inputs, samples = probe_inputs(size, next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with taps.recording() as records:
            run_to_depth(model, inputs, samples, taps.paths)
        return records
    finally:
        model.train(was_training)


class Teacher:
    """The frozen teacher of a run and the records it gives each step.

    Args:
        spec: ``dict(config=..., checkpoint=..., cfg_options=None)``.
        taps: what the distillers declared they need from the teacher (module paths, ``'<path>:in'``).
        student_preprocessor: the student's data preprocessor config (its normalisation).
        half: run in half precision (fp16 on GPU, bf16 on CPU).
        device: where the model goes.
        model: the model of ``spec['config']`` built and frozen elsewhere; default: built and loaded from
            ``spec['checkpoint']``.
    """

    checked = True  # the teacher check scores this model (a control that is not the teacher says False)

    def __init__(self, spec: dict, taps: Sequence[str], student_preprocessor: dict, half: bool = False,
                 device: torch.device | str = "cpu", model: nn.Module | None = None) -> None:
        self.spec = spec
        if model is None:
            model = build_teacher(spec["config"], spec["checkpoint"], spec.get("cfg_options"))
        self.model = frozen(model).to(device)
        self.taps = TapRecorder(self.model, taps, "teacher")
        config = load_model_config(spec["config"], spec.get("cfg_options"))
        self.input_adapter = InputAdapter(student_preprocessor, dict(config.get("data_preprocessor") or {}))
        self.input_adapter.to(device)
        self.half = half

    @contextmanager
    def _inference(self, device_type: str) -> Iterator[None]:
        """Inference mode, in half precision when asked (fp16 on GPU, bf16 on CPU)."""
        dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
        with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=self.half):
            yield

    def records(self, inputs: Tensor, data_samples: list[DetDataSample], batch: DistillBatch | None = None) -> Records:
        """The tapped records of this batch, computed in inference mode and returned as ordinary tensors
        (``batch`` is what controls built on a teacher read; the teacher itself needs only the images)."""
        with self._inference(inputs.device.type), self.taps.recording() as records:
            run_to_depth(self.model, self.input_adapter(inputs), data_samples, self.taps.paths)
        return records.cloned()

    def predict(self, inputs: Tensor, data_samples: list[DetDataSample]) -> list[DetDataSample]:
        """The teacher's detections on a batch of student inputs, run as for its records (input adapter, precision),
        in original image coordinates and fp32, as mmdet's evaluators take them."""
        with self._inference(inputs.device.type):
            results = self.model.predict(self.input_adapter(inputs), data_samples, rescale=True)
        for sample in results:
            for key, value in sample.pred_instances.items():
                if value.is_floating_point():
                    setattr(sample.pred_instances, key, value.float())
        return results

    def probe(self, size: int) -> Records:
        return probe(self.model, self.taps, size)

    def apply(self, fn: Callable, *args: Any, **kwargs: Any) -> None:
        """Apply a ``Module._apply`` function (``.to()``, ``.half()``, ...) to the model and the adapter."""
        self.model._apply(fn, *args, **kwargs)
        self.input_adapter._apply(fn, *args, **kwargs)
