"""Evaluate a detector checkpoint; for a distillation config the student alone is built and tested."""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import kdtools  # noqa: F401
from kdtools.checkpoint import load_student_weights
from kdtools.config import expand_distill_config, is_distill_config, read_config, student_config
from kdtools.training import prepare_data, setup_cpu_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Test (and evaluate) a detector")
    parser.add_argument("config", help="test config file path (a distillation config is fine)")
    parser.add_argument("checkpoint", help="checkpoint file (distillation or plain)")
    parser.add_argument("--work-dir", help="the dir to save the evaluation metrics")
    parser.add_argument("--out", help="dump predictions to a pickle file")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config settings, key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = read_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if is_distill_config(cfg):
        cfg = student_config(expand_distill_config(cfg))
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or osp.join(
        "./work_dirs", osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = None
    if args.out:
        cfg.test_evaluator = [*(cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]),
                              dict(type="DumpDetResults", out_file_path=args.out)]
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    prepare_data(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_student_weights(model, args.checkpoint)
    runner.test()


if __name__ == "__main__":
    main()
