"""tools/train.py around the Runner: the distillation config checked before the Runner's environment report, and
the lr schedule fit to a training shorter than its phases."""
from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config

from kdtools.checkpoint import load_checkpoint_file
from kdtools.checks import check_distill_config
from kdtools.config import expand_distill_config
from kdtools.training import drop_empty_schedulers

ROOT = Path(__file__).resolve().parents[1]
# The configs that take the toy schedule or set its length (every other config inherits from one of them).
TOY_SCHEDULE_CONFIGS = sorted(path for folder in ("toy", "bccd", "demo")
                              for path in (ROOT / "configs" / folder).rglob("*.py")
                              if re.search("toy_schedule|max_epochs", path.read_text()))
ENV_REPORT = "System environment"
PKD = dict(type="PKD", connector="conv1x1")


def train(config: Path, *options: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools/train.py"), str(config), "--cfg-options", *options], cwd=cwd,
        env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600,
    )


def toy_data_options(root: str) -> list[str]:
    """--cfg-options that point a toy config at ``root`` and load its data in the main process."""
    options = [f"toy_data.data_root={root}"]
    for loader in ("train_dataloader", "val_dataloader"):
        options += [f"{loader}.dataset.data_root={root}", f"{loader}.num_workers=0",
                    f"{loader}.persistent_workers=False"]
    return options


# ------------------------------------------------------------------------------------------------ schedules
def test_the_shipped_schedules_are_left_as_they_are():
    cosine_from_epoch_1 = 0
    for path in TOY_SCHEDULE_CONFIGS:
        cfg = Config.fromfile(str(path))
        before = copy.deepcopy(cfg.get("param_scheduler"))
        drop_empty_schedulers(cfg)
        assert cfg.get("param_scheduler") == before, path
        cosine_from_epoch_1 += any(s["type"] == "CosineAnnealingLR" and s["begin"] == 1 for s in before)
    assert cosine_from_epoch_1 == len(TOY_SCHEDULE_CONFIGS) >= 16


def test_a_one_epoch_run_leaves_the_empty_cosine_phase_out():
    cfg = Config.fromfile(str(ROOT / "configs/toy/pkd_retina_toy.py"))
    cfg.train_cfg.max_epochs = 1
    drop_empty_schedulers(cfg)
    assert [(s["type"], s["begin"], s["end"]) for s in cfg.param_scheduler] == [("LinearLR", 0, 100)]
    cfg.train_cfg.max_epochs = 2
    cfg.param_scheduler = Config.fromfile(str(ROOT / "configs/toy/pkd_retina_toy.py")).param_scheduler
    drop_empty_schedulers(cfg)
    assert len(cfg.param_scheduler) == 2


def test_train_py_trains_a_toy_config_for_one_epoch(toy_root, tmp_path):
    work_dir = tmp_path / "work"
    result = train(ROOT / "configs/toy/retinanet_toy_student.py", "train_cfg.max_epochs=1",
                   f"work_dir={work_dir}", *toy_data_options(toy_root))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checkpoint = load_checkpoint_file(str(work_dir / "epoch_1.pth"))
    assert checkpoint["meta"]["epoch"] == 1 and checkpoint["meta"]["iter"] == 2  # 16 images, batches of 8
    assert [state["last_step"] for state in checkpoint["param_schedulers"]] == [2]  # the warm-up alone
    assert "Epoch(val) [1]" in result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------ checks
@pytest.mark.parametrize("option, message", [
    ("distill.0.type=PDK", "Unknown distiller type 'PDK'; did you mean 'PKD', 'DMKD' or 'LD'?"),
    ("teacher.checkpoint=missing/teacher.pth", "Teacher checkpoint 'missing/teacher.pth' not found"),
])
def test_train_py_stops_on_a_wrong_config_before_the_environment_report(option, message, teacher_ckpt, tmp_path):
    options = [f"teacher.checkpoint={teacher_ckpt}", option, f"work_dir={tmp_path}"]
    result = train(ROOT / "configs/toy/pkd_retina_toy.py", *options, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-3000:]
    assert ENV_REPORT not in result.stdout + result.stderr


def checked(cfg: Config) -> str:
    """The message of the error :func:`check_distill_config` raises on ``cfg`` (expanded first); none fails."""
    with pytest.raises((TypeError, ValueError, KeyError, FileNotFoundError)) as raised:
        check_distill_config(expand_distill_config(cfg))
    assert "?." not in str(raised.value)
    return str(raised.value)


def test_check_passes_a_sound_config_and_a_plain_one(make_config):
    check_distill_config(expand_distill_config(make_config([PKD])))
    check_distill_config(Config.fromfile(str(ROOT / "configs/toy/retinanet_toy_student.py")))


@pytest.mark.parametrize("distill, message", [
    ([dict(type="PKD", loss_wieght=1.0)],
     "PKD got unknown config keys ['loss_wieght']. 'loss_wieght': did you mean 'loss_weight'? Accepted keys"),
    ([dict(type="MGD", schedule=dict(warmup=10))], "Unknown schedule keys ['warmup']"),
    ([], "distill=[] is empty"),
])
def test_check_names_wrong_distillers(make_config, distill, message):
    cfg = make_config([PKD])
    cfg.distill = distill
    assert message in checked(cfg)


def test_check_names_wrong_detector_and_stage_keys(make_config):
    cfg = expand_distill_config(make_config([PKD]))
    cfg.model.teacher_hlaf = True
    assert "'teacher_hlaf': did you mean 'teacher_half', 'teacher'" in checked(cfg)
    assert "unknown keys: ['epoch']" in checked(make_config([PKD], stages=[dict(epoch=1)]))


def test_check_names_missing_teacher_files(make_config):
    cfg = make_config([PKD])
    cfg.teacher.config = "configs/toy/no_such_teacher.py"
    assert "Teacher config 'configs/toy/no_such_teacher.py' not found" in checked(cfg)
    stage = dict(epochs=1, teacher=dict(config=str(ROOT / "configs/toy/retinanet_toy_teacher.py"),
                                        checkpoint="missing.pth"))
    assert "Teacher checkpoint 'missing.pth' not found" in checked(make_config([PKD], stages=[stage]))
