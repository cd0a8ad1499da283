"""Checks of a distillation config that need no model, run before mmengine's Runner is built.

The Runner reports the environment before it builds the model, so a mistake found while building the
``DistillDetector`` arrives after that report; what can be told from the config alone is checked here first.
"""
from __future__ import annotations

from mmengine.config import Config

from kdtools.detectors.distill_detector import (
    DistillDetector,
    check_distillers,
    check_stage,
    teacher_specs,
)
from kdtools.detectors.teacher import check_teacher_files
from kdtools.registry import accepted_keys, check_keys, distiller_class


def check_distill_config(cfg: Config) -> None:
    """Raise on what an expanded distillation config gets wrong on its face.

    Unknown ``DistillDetector`` or stage keys, no distiller, unknown distiller types or keys (close matches
    named), and a teacher config or checkpoint that does not exist. A plain detector config passes.
    """
    model = cfg.model
    if model.get("type") != "DistillDetector":
        return
    check_keys("DistillDetector", model, accepted_keys(DistillDetector))
    for distiller in check_distillers(model.get("distillers") or []):
        distiller_class(distiller)
    stages = [check_stage(i, stage) for i, stage in enumerate(model.get("stages") or [])]
    if not model.get("peers"):  # codistillation's sources are the peers, built from their configs
        for spec in teacher_specs(model.get("teacher"), stages):
            check_teacher_files(spec)
