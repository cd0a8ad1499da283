"""Train-and-evaluate runs shared by the demo and the accuracy studies."""
from __future__ import annotations

import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from collections.abc import Sequence

from mmengine.config import Config
from mmengine.runner import Runner

from kdtools.checks import check_distill_config
from kdtools.config import expand_distill_config, read_config, set_teacher_checkpoint
from kdtools.training import drop_empty_schedulers, prepare_data

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
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


def train_peers(config: str, work_dir: str, seed: int = 0, options: Sequence[str] = (), port: int = 29500
                ) -> list[dict[str, float]]:
    """Train a codistill config on ``peers`` CPU processes (one per peer, one thread each) with
    ``tools/dist_train.sh`` and return each peer's final COCO metrics (0-100) and the wall time."""
    cfg = read_config(config)
    peers = cfg.codistill["peers"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHON=sys.executable, PORT=str(port))
    command = ["bash", osp.join(ROOT, "tools/dist_train.sh"), config, str(peers), "--work-dir", work_dir,
               "--cfg-options", f"randomness.seed={seed}", *options]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    seconds = time.perf_counter() - start
    return [{**final_metrics(osp.join(work_dir, f"peer{p}")), "train_s": seconds, "peer": p} for p in range(peers)]


def final_metrics(work_dir: str) -> dict[str, float]:
    """The last validation's COCO metrics (0-100) of the latest run in ``work_dir`` (its scalars.json)."""
    runs = sorted(glob.glob(osp.join(work_dir, "*", "vis_data", "scalars.json")))
    with open(runs[-1]) as f:
        logs = [json.loads(line) for line in f]
    last = next(log for log in reversed(logs) if METRICS["mAP"].removeprefix("val/") in log)
    return {key: 100 * last[tag.removeprefix("val/")] for key, tag in METRICS.items()}
