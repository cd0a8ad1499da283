"""Shared fixtures: a tiny toy data set, a saved teacher checkpoint and distillation configs built on them."""
from __future__ import annotations

import copy
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from mmdet.utils import register_all_modules
from mmengine.config import Config

import kdtools  # noqa: F401
from kdtools.datasets import make_toy_coco
from kdtools.distillers import BaseDistiller
from kdtools.registry import DISTILLERS

register_all_modules(init_default_scope=True)

ROOT = Path(__file__).resolve().parents[1]
STUDENT_CONFIG = ROOT / "configs/toy/retinanet_toy_student.py"
TEACHER_CONFIG = ROOT / "configs/toy/retinanet_toy_teacher.py"

torch.set_num_threads(min(2, os.cpu_count() or 1))

# Every feature distiller of the toolkit (from the registry), aligned to the toy teacher's FPN by 1x1 convs.
ALL_DISTILLERS = [
    dict(type=name, name=name.lower(), connector="conv1x1")
    for name, cls in sorted(DISTILLERS.module_dict.items()) if issubclass(cls, BaseDistiller)
]


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("toy_coco")
    make_toy_coco(root, num_train=16, num_val=8, img_size=128, seed=0)
    return str(root) + "/"


def build_plain(config: Path | str):
    from mmdet.registry import MODELS

    cfg = Config.fromfile(str(config))
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def save_random_checkpoint(config: Path, path: Path) -> str:
    """A checkpoint of ``config``'s model in mmengine's layout, random weights (seed 0)."""
    torch.manual_seed(0)
    torch.save({"state_dict": build_plain(config).state_dict(), "meta": {}}, path)
    return str(path)


@pytest.fixture(scope="session")
def teacher_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A teacher checkpoint in mmengine's layout (random weights: enough to exercise the plumbing)."""
    return save_random_checkpoint(TEACHER_CONFIG, tmp_path_factory.mktemp("teacher") / "teacher.pth")


def toy_distill_config(
    toy_root: str, teacher_ckpt: str, distill: list[dict], work_dir: str | Path | None = None,
    student: Path = STUDENT_CONFIG, teacher: Path = TEACHER_CONFIG, **top: object
) -> Config:
    """A toy student config (RetinaNet's by default) with a teacher and distillers, reading the tiny data set,
    1 epoch; the teacher check is off (the teachers of these tests are not trained)."""
    cfg = Config.fromfile(str(student))
    cfg.teacher = dict(config=str(teacher), checkpoint=teacher_ckpt)
    cfg.teacher_check = None
    cfg.distill = copy.deepcopy(distill)
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = toy_root
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        cfg[loader].batch_size = 4
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork"), dist_cfg=dict(backend="gloo"))
    cfg.randomness = dict(seed=0, deterministic=False)
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    cfg.merge_from_dict(top)
    return cfg


def two_iterations(cfg: Config, toy_root: str) -> Config:
    """``cfg`` trained for 2 iterations of 2 images on the tiny toy data, logged every step, no validation and no
    checkpoint."""
    cfg.train_dataloader.dataset.data_root = toy_root
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False,
                                sampler=dict(type="InfiniteSampler", shuffle=True))
    for key in ("val_dataloader", "val_cfg", "val_evaluator", "test_dataloader", "test_cfg", "test_evaluator"):
        cfg[key] = None
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.log_processor = dict(by_epoch=False)
    cfg.env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork"), dist_cfg=dict(backend="gloo"))
    cfg.randomness = dict(seed=0, deterministic=False)
    return cfg


@pytest.fixture
def make_config(toy_root: str, teacher_ckpt: str):
    def make(distill: list[dict] | None = None, **top: object) -> Config:
        return toy_distill_config(toy_root, teacher_ckpt, distill or [dict(type="PKD")], **top)

    return make


@contextmanager
def tool_module(name: str) -> Iterator[object]:
    """``tools/<name>.py`` imported as a module while the context lasts (in ``sys.modules``, where dataclasses
    look their module up)."""
    spec = importlib.util.spec_from_file_location(f"kdtools_tool_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]
