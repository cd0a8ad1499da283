"""Distillation configs: the three-word form and its expansion.

A distillation config is an mmdet config of the student plus::

    teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py', checkpoint='...')
    distill = [dict(type='DMKD')]

and optionally ``stages``, ``inherit_teacher``, ``teacher_half`` and ``nonfinite``. :func:`expand_distill_config` turns
that into ``model = dict(type='DistillDetector', student=<the mmdet model>, ...)``; a config that already
says ``model = dict(type='DistillDetector', ...)`` is left as it is. ``teacher_check`` (default on, ``None``: off)
stays a top-level key: it sets the :class:`~kdtools.hooks.TeacherCheckHook` that the expansion adds.

The tools read configs with :func:`read_config`: a config's ``custom_imports`` find modules in the directory the
tool runs from, as under ``python -m``. :func:`student_config` keeps only the imports the student itself needs.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

from mmengine.config import Config
from mmengine.registry import Registry
from mmengine.utils import import_modules_from_strings

from kdtools.hooks.teacher_check import teacher_check_hook

DISTILL_KEYS = ("teacher", "distill", "stages", "inherit_teacher", "teacher_half", "nonfinite", "teacher_control")
KDTOOLS_HOOKS = ("StageHook", "DistillScheduleHook", "RNGStateHook", "TeacherCheckHook", "PeerExchangeHook")


def search_working_dir() -> None:
    """Put the directory this process runs in first on ``sys.path``, as ``python -m`` does, so that modules
    named in ``custom_imports`` are found next to where a tool is run."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def read_config(path: str) -> Config:
    """``Config.fromfile(path)`` with its ``custom_imports`` imported from the working directory first."""
    search_working_dir()
    return Config.fromfile(path)


def import_custom_modules(custom_imports: dict | None) -> None:
    """Import a config's ``custom_imports`` as :func:`read_config` does, in a process that was handed the
    config's contents rather than its file (a spawned worker)."""
    search_working_dir()
    if custom_imports:
        import_modules_from_strings(**custom_imports)


def is_distill_config(cfg: Config) -> bool:
    return "distill" in cfg or cfg.model.get("type") == "DistillDetector"


def expand_distill_config(cfg: Config) -> Config:
    """Wrap the student model into a DistillDetector and add the hooks the config needs."""
    if "distill" in cfg:
        if cfg.model.get("type") == "DistillDetector":
            raise ValueError("Give either model=dict(type='DistillDetector', ...) or distill=[...], not both.")
        model = dict(type="DistillDetector", student=cfg.model, distillers=cfg.distill)
        model.update({key: cfg[key] for key in DISTILL_KEYS if key != "distill" and key in cfg})
        cfg.model = model
        for key in DISTILL_KEYS:
            cfg.pop(key, None)
    if cfg.model.get("type") == "DistillDetector":
        needed = ["DistillScheduleHook", "RNGStateHook"] + (["StageHook"] if cfg.model.get("stages") else [])
        check = teacher_check_hook(cfg)  # teacher_check stays in cfg: expanding again adds the same hooks
        hooks = list(cfg.get("custom_hooks", []))
        present = {h.get("type") for h in hooks}
        added = [dict(type=name) for name in needed] + ([check] if check else [])
        cfg.custom_hooks = hooks + [h for h in added if h["type"] not in present]
    return cfg


def set_teacher_checkpoint(cfg: Config, checkpoint: str | None) -> Config:
    """``cfg`` with every teacher's checkpoint (``teacher`` and each stage's) set to ``checkpoint`` (None: as is)."""
    if checkpoint is not None:
        for stage in cfg.get("stages") or []:
            stage["teacher"]["checkpoint"] = checkpoint
        if "teacher" in cfg:
            cfg.teacher.checkpoint = checkpoint
    return cfg


def student_config(cfg: Config) -> Config:
    """The plain mmdet config of the student of a distillation config."""
    cfg = Config(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
    if cfg.model.get("type") == "DistillDetector":
        cfg.model = cfg.model.student
    for key in (*DISTILL_KEYS, "teacher_check"):
        cfg.pop(key, None)
    cfg.custom_hooks = [h for h in cfg.get("custom_hooks", []) if h.get("type") not in KDTOOLS_HOOKS]
    custom_imports = cfg.pop("custom_imports", None)
    if custom_imports:
        needed = needed_imports(custom_imports, config_types(cfg.to_dict()))
        if needed:
            cfg.custom_imports = dict(custom_imports, imports=needed)
    return cfg


def config_types(value: Any) -> set[str]:
    """Every ``type`` named anywhere in a config, without its scope (``'mmdet.RetinaNet'`` gives ``'RetinaNet'``)."""
    if isinstance(value, dict):
        kind = value.get("type")
        names = {kind.rsplit(".", 1)[-1] if isinstance(kind, str) else getattr(kind, "__name__", "")}
        return names.union(*(config_types(v) for v in value.values())) - {""}
    if isinstance(value, (list, tuple)):
        return set().union(*(config_types(v) for v in value))
    return set()


def needed_imports(custom_imports: dict, types: set[str]) -> list[str]:
    """The modules of ``custom_imports`` that register (in any mmengine registry) one of ``types``; a module
    that registers only distillers, kdtools' own or a user's, is not needed by the student's config."""
    imports = custom_imports.get("imports", [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    import_modules_from_strings(imports, custom_imports.get("allow_failed_imports", False))
    return [name for name in imports if registered_by(name) & types]


def registered_by(module: str) -> set[str]:
    """The names registered, in every mmengine registry and its children, to objects defined in ``module`` or
    in the modules of its package."""
    return {name for registry in all_registries() for name, obj in registry.module_dict.items()
            if getattr(obj, "__module__", "") == module or getattr(obj, "__module__", "").startswith(module + ".")}


def all_registries() -> Iterator[Registry]:
    """mmengine's root registries and, recursively, their children (mmdet's, kdtools')."""
    from mmengine.registry import root

    pending = [value for value in vars(root).values() if isinstance(value, Registry)]
    while pending:
        registry = pending.pop()
        yield registry
        pending.extend(registry.children.values())
