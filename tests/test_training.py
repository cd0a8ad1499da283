"""End to end through mmengine's Runner: train, evaluate, resume, export, and 2-process gloo training."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ALL_DISTILLERS
from mmengine.config import Config
from mmengine.runner import Runner

from kdtools.checkpoint import load_checkpoint_file
from kdtools.config import expand_distill_config

ROOT = Path(__file__).resolve().parents[1]
PKD = dict(type="PKD", connector="conv1x1")


def iter_config(make_config, work_dir: Path, max_iters: int = 2) -> Config:
    cfg = make_config([PKD], work_dir=str(work_dir))
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1, by_epoch=False)
    cfg.log_processor = dict(by_epoch=False)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_root, teacher_ckpt):
    from conftest import toy_distill_config

    work_dir = tmp_path_factory.mktemp("run")
    cfg = iter_config(lambda d, **kw: toy_distill_config(toy_root, teacher_ckpt, d, **kw), work_dir)
    runner = Runner.from_cfg(expand_distill_config(cfg.copy()))
    runner.train()
    return cfg, work_dir, runner


def test_a_real_run_trains_evaluates_and_saves_without_the_teacher(trained):
    cfg, work_dir, runner = trained
    assert runner.iter == 2
    scalars = runner.message_hub.log_scalars
    assert "train/loss_pkd_p3" in scalars and "val/coco/bbox_mAP" in scalars
    ckpt = load_checkpoint_file(str(work_dir / "iter_2.pth"))
    assert not any(k.startswith("teacher") for k in ckpt["state_dict"])
    assert any(k.startswith("distillers.") for k in ckpt["state_dict"])


def test_checkpoints_hold_only_safe_globals(trained):
    _, work_dir, _ = trained
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(work_dir / "iter_1.pth"))
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in torch.serialization.get_safe_globals()}
    assert set(unsafe) <= allowed, set(unsafe) - allowed


def test_resume_continues_from_the_saved_iteration(trained, tmp_path, make_config):
    _, work_dir, _ = trained
    cfg = iter_config(make_config, tmp_path, max_iters=3)
    cfg.resume, cfg.load_from = True, str(work_dir / "iter_1.pth")
    runner = Runner.from_cfg(expand_distill_config(cfg))
    runner.train()
    assert runner.iter == 3
    saved = load_checkpoint_file(str(work_dir / "iter_1.pth"))
    assert saved["meta"]["iter"] == 1
    assert "optimizer" in saved and "message_hub" in saved


def test_exported_student_predicts_identically_in_plain_mmdet(trained, tmp_path):
    from mmdet.apis import inference_detector, init_detector

    cfg, work_dir, runner = trained
    config_path = tmp_path / "kd.py"
    cfg.dump(str(config_path))
    out = tmp_path / "student.pth"
    subprocess.run(
        [sys.executable, str(ROOT / "tools/export_student.py"), str(config_path), str(work_dir / "iter_2.pth"),
         str(out)], check=True, cwd=ROOT,
    )
    exported = torch.load(out, weights_only=True)
    assert not any(k.startswith(("student.", "teacher", "distillers")) for k in exported["state_dict"])
    plain = init_detector(str(tmp_path / "student.py"), str(out), device="cpu")
    image = str(Path(cfg.val_dataloader.dataset.data_root) / "val" / sorted(
        os.listdir(Path(cfg.val_dataloader.dataset.data_root) / "val"))[0])
    kd_model = runner.model
    kd_model.eval()
    reference = init_detector(str(tmp_path / "student.py"), None, device="cpu")
    reference.load_state_dict({k.removeprefix("student."): v for k, v in kd_model.state_dict().items()
                               if k.startswith("student.")})
    a, b = inference_detector(plain, image), inference_detector(reference, image)
    assert len(a.pred_instances) > 0
    assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
    assert torch.equal(a.pred_instances.scores, b.pred_instances.scores)


def test_every_distiller_trains_under_two_process_gloo_ddp(tmp_path, make_config):
    """tools/dist_train.sh, 2 CPU processes, all distillers at once, one of them idle (weight scheduled to 0):
    DDP (find_unused_parameters=False) fails at the second step if any distiller parameter got no gradient."""
    cfg = iter_config(make_config, tmp_path / "work", max_iters=2)
    cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=False)
    cfg.distill = [dict(d, schedule=dict(stop_epoch=0)) if d["type"] == "CWD" else d for d in ALL_DISTILLERS]
    # MGD calibrates its weight over both steps: the sums are added over the two processes (a collective).
    cfg.distill = [dict(d, loss_weight="auto", auto_ratio=0.5, auto_iters=2) if d["type"] == "MGD" else d
                   for d in cfg.distill]
    config_path = tmp_path / "kd_dist.py"
    cfg.dump(str(config_path))
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29500 + os.getpid() % 1000), OMP_NUM_THREADS="1")
    result = subprocess.run(
        ["bash", str(ROOT / "tools/dist_train.sh"), str(config_path), "2"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "work" / "iter_2.pth").is_file()
    log = next((tmp_path / "work").glob("*/*.log")).read_text()
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log
    assert "loss_rnd_p3" in log and "loss_cwd_p3: 0.0000" in log
    assert "mgd: loss_weight calibrated over 2 iterations" in log
    state = load_checkpoint_file(str(tmp_path / "work" / "iter_2.pth"))["state_dict"]
    mgd = next(i for i, d in enumerate(cfg.distill) if d["type"] == "MGD")
    assert int(state[f"distillers.{mgd}.calibration.steps"]) == 2
