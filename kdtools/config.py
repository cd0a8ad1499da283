"""Distillation configs: the three-word form and its expansion.

A distillation config is an mmdet config of the student plus::

    teacher = dict(config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py', checkpoint='...')
    distill = [dict(type='DMKD')]

and optionally ``stages``, ``inherit_teacher``, ``teacher_half`` and ``nonfinite``. :func:`expand_distill_config` turns
that into ``model = dict(type='DistillDetector', student=<the mmdet model>, ...)``; a config that already
says ``model = dict(type='DistillDetector', ...)`` is left as it is.
"""
from __future__ import annotations

from mmengine.config import Config

DISTILL_KEYS = ("teacher", "distill", "stages", "inherit_teacher", "teacher_half", "nonfinite")
KDTOOLS_HOOKS = ("StageHook", "DistillScheduleHook", "RNGStateHook")


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
        hooks = list(cfg.get("custom_hooks", []))
        present = {h.get("type") for h in hooks}
        cfg.custom_hooks = hooks + [dict(type=name) for name in needed if name not in present]
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
    for key in DISTILL_KEYS:
        cfg.pop(key, None)
    cfg.custom_hooks = [h for h in cfg.get("custom_hooks", []) if h.get("type") not in KDTOOLS_HOOKS]
    return cfg
