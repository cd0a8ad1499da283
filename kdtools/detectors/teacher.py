"""Building a frozen teacher from a config and a checkpoint, with errors that name the fix."""
from __future__ import annotations

import os.path as osp
from typing import Any

import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import find_latest_checkpoint
from mmengine.utils import get_installed_path
from torch import nn

from kdtools.checkpoint import load_checkpoint_file, state_dict_of

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


def build_teacher(config: str | dict, checkpoint: str, cfg_options: dict | None = None) -> nn.Module:
    """An mmdet detector in eval mode with frozen weights loaded strictly from ``checkpoint``."""
    from mmdet.registry import MODELS

    checkpoint = resolve_checkpoint(config, checkpoint)
    model_cfg = load_model_config(config, cfg_options)
    model_cfg.pop("init_cfg", None)
    teacher = MODELS.build(model_cfg)
    state = state_dict_of(load_checkpoint_file(checkpoint))
    check_state_dict(teacher, state, checkpoint)
    teacher.load_state_dict(state, strict=True)
    teacher.requires_grad_(False)
    return teacher.eval()


def teacher_spec(value: Any) -> dict:
    """Validate a ``teacher=dict(config=..., checkpoint=...)`` entry."""
    allowed = {"config", "checkpoint", "cfg_options"}
    if not isinstance(value, dict) or "config" not in value or "checkpoint" not in value:
        raise ValueError(f"teacher must be dict(config=..., checkpoint=...), got {value!r}")
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"Unknown teacher keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(value)
