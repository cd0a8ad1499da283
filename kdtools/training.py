"""Run-time helpers shared by the tools: mixed precision, data preparation and the fit of the lr schedule."""
from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import barrier
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS, OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on CPU: the forward runs under bf16 autocast (no loss scaling is needed for bf16)."""

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast("cpu", dtype=torch.bfloat16):
            yield


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU processes: no ``device_ids`` (the Runner passes the local rank)."""

    def __init__(self, module: nn.Module, device_ids: list[int] | None = None, **kwargs) -> None:
        super().__init__(module=module, device_ids=None, **kwargs)


def setup_cpu_distributed(cfg: Config) -> None:
    """Without GPUs, a distributed launch (torchrun, Slurm) trains on CPU processes over gloo.

    mmengine's launcher code assumes CUDA (it calls ``torch.cuda.set_device``), so the process group is
    created here first; the Runner then finds it initialised and uses it.
    """
    if cfg.get("launcher", "none") == "none" or torch.cuda.is_available() or torch_dist.is_initialized():
        return
    if cfg.launcher == "slurm":
        slurm_env()
    torch_dist.init_process_group(backend="gloo")
    use_cpu_distributed(cfg)


def use_cpu_distributed(cfg: Config) -> None:
    """The Runner's settings for CPU processes: gloo, and the DDP wrapper without devices."""
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "gloo"
    cfg.model_wrapper_cfg = dict(cfg.get("model_wrapper_cfg") or {}, type="CPUDistributedDataParallel")


def slurm_env() -> None:
    """torch.distributed's environment from Slurm's, as mmengine's Slurm launcher sets it."""
    os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
    os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
    os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
    os.environ.setdefault("MASTER_PORT", "29500")
    if "MASTER_ADDR" not in os.environ:
        nodes = subprocess.check_output(["scontrol", "show", "hostnames", os.environ["SLURM_NODELIST"]], text=True)
        os.environ["MASTER_ADDR"] = nodes.split()[0]


def enable_amp(cfg: Config) -> None:
    """Mixed precision: mmengine's AmpOptimWrapper (fp16) on GPU, bf16 autocast on CPU."""
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    else:
        cfg.optim_wrapper.type = "CPUAmpOptimWrapper"


def prepare_data(cfg: Config) -> None:
    """Write the synthetic toy data set a config asks for (``toy_data = dict(...)``) if it is missing.

    Call after the Runner is built (distributed set up): one process per node writes, the others wait.
    """
    if not cfg.get("toy_data"):
        return
    from kdtools.datasets import ensure_toy_coco

    if int(os.environ.get("LOCAL_RANK", 0)) == 0:
        ensure_toy_coco(**cfg.toy_data)
    barrier()


def drop_empty_schedulers(cfg: Config) -> None:
    """Leave out the param schedulers that training ends before.

    A scheduler without ``end`` runs to the end of training (the Runner sets ``end`` to ``max_epochs``, or
    ``max_iters`` for ``by_epoch=False``). When training ends at or before its ``begin``, as the toy schedule's
    cosine decay from epoch 1 does in a 1-epoch run, it would act on no step and mmengine rejects it
    (end <= begin): it is left out, with a warning. Schedulers that name their ``end`` are left as they are.
    """
    schedulers = cfg.get("param_scheduler")
    if isinstance(schedulers, dict) and "type" in schedulers:
        schedulers = [schedulers]
    if not isinstance(schedulers, list):
        return
    train_cfg = cfg.get("train_cfg") or {}
    empty = [s for s in schedulers if _ends_before_begin(s, train_cfg)]
    for scheduler in empty:
        unit = "epoch" if scheduler.get("by_epoch", True) else "iteration"
        print_log(f"param_scheduler: {scheduler['type']} left out, training ends before its begin ({unit} "
                  f"{scheduler['begin']}).", logger="current", level=logging.WARNING)
    if empty:
        cfg.param_scheduler = [s for s in schedulers if s not in empty]


def _ends_before_begin(scheduler: dict, train_cfg: dict) -> bool:
    length = train_cfg.get("max_epochs" if scheduler.get("by_epoch", True) else "max_iters")
    return "end" not in scheduler and length is not None and scheduler.get("begin", 0) >= length
