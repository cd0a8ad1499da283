"""Train a detector, distilled or plain, with mmengine's Runner (mmdet's conventions)."""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import kdtools  # noqa: F401  (registers the detector, distillers, hooks; safe checkpoint loading)
from kdtools.checks import check_distill_config
from kdtools.codistill import init_peer_groups, layout_from_env, peer_config
from kdtools.config import expand_distill_config, read_config
from kdtools.training import drop_empty_schedulers, enable_amp, prepare_data, setup_cpu_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a (distilled) detector")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs and checkpoints")
    parser.add_argument("--amp", action="store_true", help="mixed precision (fp16 on GPU, bf16 on CPU)")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the lr with the total batch size")
    parser.add_argument(
        "--resume", nargs="?", type=str, const="auto",
        help="resume from this checkpoint, or from the latest one in the work dir when no path is given",
    )
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    cfg = read_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if "codistill" in cfg:  # this process's peer: its model, work dir, seed and shard
        cfg = peer_config(cfg, layout_from_env(cfg.codistill["peers"], args.launcher).peer)
    cfg = expand_distill_config(cfg)
    drop_empty_schedulers(cfg)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        cfg.auto_scale_lr = dict(cfg.get("auto_scale_lr", {}), enable=True)
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main() -> None:
    cfg = build_config(parse_args())
    check_distill_config(cfg)  # before the Runner, which reports the environment first
    if "codistill" in cfg:
        init_peer_groups(cfg)
    else:
        setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    prepare_data(cfg)
    runner.train()


if __name__ == "__main__":
    main()
