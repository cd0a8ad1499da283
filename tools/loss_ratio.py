"""The distillation / detection loss ratio of a config over its first training iterations.

    python tools/loss_ratio.py CONFIG [--iters 50] [--loss-weight W] [--teacher CKPT] [--seed 0]

Trains CONFIG for ``--iters`` iterations (its iteration-based warm-up kept, epoch-based schedulers and stages
left out) and prints, per distiller, sum of its losses / sum of the detection losses over those iterations.
``--loss-weight`` replaces every distiller's ``loss_weight`` (``'auto'`` included). This is how the default
``auto_ratio`` of MGD, DMKD and DFMSD was measured: on ``configs/bccd/<method>_retina_bccd.py`` with
``--loss-weight 21.875``, the published weight carried from COCO's 800x1344 inputs to BCCD's 192x256 by the
number of P3-P7 positions (22400 / 1024).
"""
from __future__ import annotations

import argparse

from mmengine.hooks import Hook
from mmengine.runner import Runner

import kdtools  # noqa: F401
from kdtools.calibration import detection_loss
from kdtools.experiments import load_config


def is_loss_of(key: str, name: str) -> bool:
    """Whether ``key`` is one of distiller ``name``'s losses: ``loss_<name>`` or ``loss_<name>_<part/level>``."""
    return key == f"loss_{name}" or key.startswith(f"loss_{name}_")


class LossSums(Hook):
    """Adds up each distiller's losses and the detection losses of every training iteration."""

    def __init__(self, names: list[str]) -> None:
        self.distill = dict.fromkeys(names, 0.0)
        self.detection = 0.0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        for name in self.distill:
            self.distill[name] += sum(float(v) for k, v in outputs.items() if is_loss_of(k, name))
        detection = {k: v for k, v in outputs.items()
                     if k != "loss" and not any(is_loss_of(k, name) for name in self.distill)}
        self.detection += float(detection_loss(detection))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--loss-weight", type=float, help="every distiller's loss_weight")
    parser.add_argument("--teacher", help="teacher checkpoint or work dir (default: the config's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="work_dirs/loss_ratio")
    args = parser.parse_args()

    cfg = load_config(args.config, args.work_dir, args.teacher, args.seed)
    if args.loss_weight is not None:
        for distiller in cfg.model.distillers:
            distiller.loss_weight = args.loss_weight
    cfg.model.pop("stages", None)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != "StageHook"]
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=args.iters, val_interval=args.iters + 1)
    cfg.param_scheduler = [s for s in cfg.get("param_scheduler", []) if not s.get("by_epoch", True)]
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=args.iters + 1, by_epoch=False)
    cfg.log_processor = dict(cfg.get("log_processor", {}), by_epoch=False)
    runner = Runner.from_cfg(cfg)
    sums = LossSums([d.name for d in runner.model.distillers])
    runner.register_hook(sums)
    runner.train()
    for name, total in sums.distill.items():
        print(f"{name}: distillation / detection loss over {args.iters} iterations = {total / sums.detection:.4g} "
              f"({total:.4g} / {sums.detection:.4g})")


if __name__ == "__main__":
    main()
