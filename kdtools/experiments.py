"""Train-and-evaluate runs shared by the demo and the accuracy study."""
from __future__ import annotations

import time

from mmengine.config import Config
from mmengine.runner import Runner

from kdtools.checks import check_distill_config
from kdtools.config import expand_distill_config, read_config, set_teacher_checkpoint
from kdtools.training import drop_empty_schedulers, prepare_data

METRICS = {"mAP": "val/coco/bbox_mAP", "AP50": "val/coco/bbox_mAP_50", "APs": "val/coco/bbox_mAP_s",
           "APm": "val/coco/bbox_mAP_m", "APl": "val/coco/bbox_mAP_l"}


def load_config(config: str | Config, work_dir: str, teacher_checkpoint: str | None = None, seed: int = 0) -> Config:
    """A config (a file or a config read already) ready to run: teacher checkpoint and seed set, distillation
    expanded, empty schedulers left out."""
    cfg = read_config(config) if isinstance(config, str) else Config(config.to_dict(), filename=config.filename)
    cfg = set_teacher_checkpoint(cfg, teacher_checkpoint)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg = expand_distill_config(cfg)
    drop_empty_schedulers(cfg)
    return cfg


def train_and_evaluate(config: str | Config, work_dir: str, teacher_checkpoint: str | None = None,
                       seed: int = 0) -> dict[str, float]:
    """Train ``config`` and return the final COCO metrics (0-100) and the training wall time."""
    cfg = load_config(config, work_dir, teacher_checkpoint, seed)
    check_distill_config(cfg)
    runner = Runner.from_cfg(cfg)
    prepare_data(cfg)
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    metrics = {key: 100 * runner.message_hub.get_scalar(tag).current() for key, tag in METRICS.items()}
    return {**metrics, "train_s": seconds}


def evaluate(config: str, checkpoint: str, work_dir: str) -> dict[str, float]:
    """COCO metrics (0-100) of a trained checkpoint of ``config`` on its validation set."""
    from kdtools.detectors.teacher import resolve_checkpoint

    cfg = load_config(config, work_dir)
    cfg.load_from = resolve_checkpoint(config, checkpoint)
    runner = Runner.from_cfg(cfg)
    prepare_data(cfg)
    metrics = runner.val()
    return {key: 100 * metrics[tag.removeprefix("val/")] for key, tag in METRICS.items()} | {"train_s": 0.0}


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A plain-text table of metrics and train time per run."""
    header = f"{'model':<12}" + "".join(f"{k:>8}" for k in METRICS) + f"{'train':>10}"
    lines = [header, "-" * len(header)]
    for name, r in rows.items():
        lines.append(f"{name:<12}" + "".join(_cell(r[k]) for k in METRICS) + f"{r['train_s']:9.0f}s")
    return "\n".join(lines)


def _cell(value: float) -> str:
    return f"{'n/a':>8}" if value < 0 else f"{value:8.1f}"  # COCO gives -1 for an area range without ground truth
