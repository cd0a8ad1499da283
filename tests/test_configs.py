"""Every shipped config parses and expands; schedules and stages agree with each other."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from kdtools.config import expand_distill_config, set_teacher_checkpoint
from kdtools.distillers import HeadDistiller, QueryDistiller
from kdtools.registry import DISTILLERS, build_distiller

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.py") if "_base_" not in p.parts)


def test_every_method_and_pair_has_a_config():
    """Every registered distiller has a toy config: a feature distiller on the RetinaNet pair, a head distiller on
    the GFL pair; the head methods have their published COCO setting."""
    names = {p.name for p in CONFIGS}
    for method, cls in DISTILLERS.module_dict.items():
        if not cls.__module__.startswith("kdtools."):
            continue  # distillers that tests register
        pair = "gfl" if issubclass(cls, HeadDistiller) else "dino" if issubclass(cls, QueryDistiller) else "retina"
        assert f"{method.lower()}_{pair}_toy.py" in names
    assert {"ld_gfl_r50.py", "crosskd_gfl_r50.py", "bckd_gfl_r50.py", "crosskd_pkd_gfl_r50.py",
            "cwd_gfl_cls_r50.py", "gfl_toy_teacher.py", "gfl_toy_student.py", "pkd_cwd_rtmdet_tiny.py",
            "pkd_cwd_yolox_tiny.py", "rtmdet_toy_teacher.py", "rtmdet_toy_student.py", "pkd_cwd_rtmdet_toy.py"} <= names
    assert {"teacher.py", "student.py", "dfmsd.py", "dmkd.py"} <= {p.name for p in CONFIGS if p.parent.name == "demo"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_config_expands(path):
    cfg = expand_distill_config(Config.fromfile(str(path)))
    assert "distill" not in cfg and "teacher" not in cfg and "stages" not in cfg  # all moved into the model
    max_epochs = cfg.train_cfg.get("max_epochs")
    if cfg.model.type == "DistillDetector":
        assert cfg.model.distillers
        stages = cfg.model.get("stages") or []
        if stages and max_epochs:
            assert sum(stage["epochs"] for stage in stages) == max_epochs
    if "mmdet::" in path.read_text():
        return  # a published mmdet schedule (RTMDet's and YOLOX's cosine phases are theirs)
    for scheduler in cfg.param_scheduler:
        if scheduler.type == "CosineAnnealingLR" and scheduler.get("by_epoch"):  # the decay ends with training
            end = scheduler.get("end", max_epochs)  # mmengine's defaults: the Runner's max_epochs, end - begin
            begin = scheduler.begin  # epoch 1; 2 in the codistill configs, whose epochs are of half the data
            assert begin in (1, 2) and end == max_epochs, path.name
            assert scheduler.get("T_max", end - begin) == max_epochs - begin, path.name


def test_runner_ends_the_cosine_decay_with_training(toy_root, tmp_path):
    """The toy schedule leaves the cosine's end and T_max to mmengine's Runner: they follow max_epochs."""
    cfg = Config.fromfile(str(ROOT / "configs/demo/student.py"))
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = toy_root
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    warmup, cosine = runner.build_param_scheduler(cfg.param_scheduler)
    epoch = len(runner.train_dataloader)
    assert (warmup.begin, warmup.end) == (0, 100)
    assert (cosine.begin, cosine.end, cosine.T_max) == (epoch, 3 * epoch, 2 * epoch)


def test_demo_schedules():
    epochs = {name: Config.fromfile(str(ROOT / f"configs/demo/{name}.py")).train_cfg.max_epochs
              for name in ("teacher", "student", "dfmsd", "dmkd")}
    assert epochs == {"teacher": 5, "student": 3, "dfmsd": 3, "dmkd": 3}


def test_a_teacher_checkpoint_override_reaches_every_stage():
    """tools/visualize.py --teacher-checkpoint and the studies set the checkpoint of each stage's teacher."""
    cfg = set_teacher_checkpoint(Config.fromfile(str(ROOT / "configs/toy/hetero_stagewise_faster_retina_toy.py")),
                                 "trained/teacher.pth")
    assert len(cfg.stages) == 2 and [s["teacher"]["checkpoint"] for s in cfg.stages] == ["trained/teacher.pth"] * 2
    model = expand_distill_config(cfg).model
    assert [s["teacher"]["checkpoint"] for s in model.stages] == ["trained/teacher.pth"] * 2


def test_head_method_coco_configs_are_the_authors_settings():
    """CrossKD's GFL configs: KL summed over bins at T = 1, weight 4, activated crossing input after conv 3;
    BCKD's: binary KD weight 1, GIoU weight 4."""
    for name in ("crosskd_gfl_r50.py", "crosskd_pkd_gfl_r50.py"):
        crosskd = Config.fromfile(str(ROOT / "configs" / name)).distill[0]
        built = build_distiller(crosskd)
        assert (built.box_loss, built.box_weight, built.tau, built.reused_layer) == ("kl", 4.0, 1.0, 3)
        assert built.crossing_input == "activated" and built.cls_weight == 1.0 and built.beta == 1.0
    bckd = build_distiller(Config.fromfile(str(ROOT / "configs/bckd_gfl_r50.py")).distill[0])
    assert (bckd.cls_weight, bckd.loc_weight, bckd.beta, bckd.positive_levels_only) == (1.0, 4.0, 1.0, True)


def test_shipped_annotations_name_their_public_source():
    import json

    for split in ("train", "val"):
        with open(ROOT / "data/bccd/annotations" / f"{split}.json") as f:
            info = json.load(f)["info"]
        assert info["source"] == "https://github.com/Shenggan/BCCD_Dataset"
        assert not any(str(value).startswith(("/", "~")) for value in info.values())
