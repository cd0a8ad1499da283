"""The teacher check (kdtools.hooks.teacher_check) through mmengine's Runner and pycocotools: a random teacher stops
the run before its first iteration, a briefly trained one passes, scores are cached, max_images caps the images,
teacher_check=None turns it off, and a stage's teacher is checked when its stage begins."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEACHER_CONFIG, toy_distill_config
from mmengine.config import Config
from mmengine.runner import Runner

from kdtools.config import expand_distill_config, student_config
from kdtools.datasets import make_toy_coco
from kdtools.detectors.teacher import Teacher
from kdtools.hooks import TeacherCheckError, TeacherCheckHook

TEACHER_ITERS = 40  # the toy teacher, batch 8 on 64 images, lr 2e-3: 0.038 COCO mAP on the 16 validation images
MIN_MAP = 0.015  # between the random teacher's score (0.000) and the briefly trained one's
PKD = dict(type="PKD", connector="conv1x1")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("toy_coco_64")
    make_toy_coco(root, num_train=64, num_val=16, img_size=128, seed=0)
    return str(root) + "/"


@pytest.fixture(scope="module", autouse=True)
def kdtools_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Scores are cached in a folder of this module's own."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("kdtools_cache")
        patch.setenv("KDTOOLS_CACHE", str(path))
        yield path


def use_data(cfg: Config, data_root: str) -> None:
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.pop("toy_data", None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_root: str) -> tuple[str, float]:
    """The toy RetinaNet teacher trained for TEACHER_ITERS iterations: its checkpoint and the validation mAP that
    mmdet's own validation loop gives it at the end."""
    work_dir = tmp_path_factory.mktemp("teacher")
    cfg = Config.fromfile(str(TEACHER_CONFIG))
    use_data(cfg, data_root)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=TEACHER_ITERS, val_interval=TEACHER_ITERS)
    cfg.param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=10)]
    cfg.optim_wrapper.optimizer.lr = 2e-3
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=TEACHER_ITERS, by_epoch=False)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return str(work_dir / f"iter_{TEACHER_ITERS}.pth"), runner.message_hub.get_scalar("val/coco/bbox_mAP").current()


def distill_config(data_root: str, checkpoint: str, work_dir: Path, **check: object) -> Config:
    """The toy RetinaNet pair with PKD for one iteration (no validation, no checkpoint) and the teacher check on."""
    cfg = toy_distill_config(data_root, checkpoint, [PKD], work_dir=work_dir)
    cfg.teacher_check = dict(dict(min_map=MIN_MAP), **check)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=1, val_interval=2)
    cfg.default_hooks.checkpoint = None
    cfg.log_processor = dict(by_epoch=False)
    return cfg


def check_hook(runner: Runner) -> TeacherCheckHook:
    (hook,) = [h for h in runner.hooks if isinstance(h, TeacherCheckHook)]
    return hook


@pytest.fixture
def predicted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images of each ``Teacher.predict`` call (the real one runs)."""
    sizes: list[int] = []
    original = Teacher.predict

    def predict(self, inputs, data_samples):
        sizes.append(len(data_samples))
        return original(self, inputs, data_samples)

    monkeypatch.setattr(Teacher, "predict", predict)
    return sizes


def test_a_random_teacher_stops_the_run_before_its_first_iteration(data_root, teacher_ckpt, tmp_path, predicted):
    runner = Runner.from_cfg(expand_distill_config(distill_config(data_root, teacher_ckpt, tmp_path)))
    with pytest.raises(TeacherCheckError) as error:
        runner.train()
    assert runner.iter == 0
    (score,) = check_hook(runner).scores
    # a random RetinaNet scores every class near its prior (0.01), below mmdet's score_thr: no detection at all
    assert (score.metric, score.value, score.images, score.cached) == ("mAP (no detection on any image)", 0.0, 16,
                                                                       False)
    assert sum(predicted) == 16
    message = str(error.value)
    for part in (f"config {TEACHER_CONFIG}", f"checkpoint {teacher_ckpt}",
                 "scores mAP (no detection on any image) = 0.0000 on 16 validation images",
                 f"teacher_check.min_map = {MIN_MAP}", "trained with this teacher config",
                 "5 classes (circle, square, triangle, cross, ring)", "lower teacher_check.min_map",
                 "teacher_check=None"):
        assert part in message, part


def test_a_trained_teacher_passes_and_its_score_is_cached(data_root, trained, tmp_path, predicted):
    checkpoint, mmdet_map = trained
    assert mmdet_map >= 2 * MIN_MAP  # 0.038 here
    runner = Runner.from_cfg(expand_distill_config(distill_config(data_root, checkpoint, tmp_path / "first")))
    runner.train()
    assert runner.iter == 1
    (score,) = check_hook(runner).scores
    # the same inputs and evaluation as mmdet's validation of the teacher itself (same normalisation here)
    assert (score.value, score.images, score.cached) == (pytest.approx(mmdet_map, abs=1e-3), 16, False)
    assert sum(predicted) == 16

    again = Runner.from_cfg(expand_distill_config(distill_config(data_root, checkpoint, tmp_path / "again")))
    again.train()
    (cached,) = check_hook(again).scores
    assert (cached.value, cached.cached) == (score.value, True)
    assert sum(predicted) == 16  # no second evaluation
    log = next((tmp_path / "again").glob("*/*.log")).read_text()
    assert f"Teacher check: coco/bbox_mAP = {score.value:.4f} on 16 validation images (cached)" in log


def test_max_images_caps_the_images_scored(data_root, trained, tmp_path, predicted):
    """Only the first max_images images are predicted and scored, also by a CocoMetric that reads its ground truth
    from the annotation file (which lists all 16)."""
    checkpoint, _ = trained
    scores = []
    for ann_file in (None, data_root + "annotations/instances_val.json"):
        cfg = distill_config(data_root, checkpoint, tmp_path / str(len(scores)), max_images=5, min_map=0.0)
        cfg.val_evaluator.ann_file = ann_file
        runner = Runner.from_cfg(expand_distill_config(cfg))
        runner.train()
        (score,) = check_hook(runner).scores
        scores.append((score.value, score.images, score.cached))
    assert sum(predicted) == 10
    assert scores[0] == scores[1] and scores[0][1:] == (5, False)


def test_stage_teachers_are_checked_as_their_stage_begins(data_root, trained, teacher_ckpt, tmp_path):
    checkpoint, _ = trained
    cfg = distill_config(data_root, checkpoint, tmp_path)
    cfg.stages = [dict(epochs=1, teacher=dict(config=str(TEACHER_CONFIG), checkpoint=checkpoint)),
                  dict(epochs=1, teacher=dict(config=str(TEACHER_CONFIG), checkpoint=teacher_ckpt))]
    cfg.train_dataloader.sampler = dict(type="DefaultSampler", shuffle=True)
    cfg.train_dataloader.batch_size = 16
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=2, val_interval=3)
    cfg.log_processor = dict(by_epoch=True)
    runner = Runner.from_cfg(expand_distill_config(cfg))
    with pytest.raises(TeacherCheckError, match=f"checkpoint {teacher_ckpt}"):
        runner.train()
    assert (runner.epoch, runner.iter) == (1, 4)  # the first stage trained, the second stopped before its first step
    assert [s.value >= MIN_MAP for s in check_hook(runner).scores] == [True, False]


def test_the_check_is_on_by_default_with_validation_and_off_with_none(data_root, teacher_ckpt, tmp_path):
    cfg = toy_distill_config(data_root, teacher_ckpt, [PKD], work_dir=tmp_path)
    cfg.pop("teacher_check")
    expanded = expand_distill_config(cfg.copy())
    hooks = [h for h in expanded.custom_hooks if h["type"] == "TeacherCheckHook"]
    assert hooks == [dict(type="TeacherCheckHook", min_map=0.05, max_images=500, metric=None)]
    assert expand_distill_config(expanded).custom_hooks == expanded.custom_hooks  # expanding twice adds nothing
    plain = student_config(expanded)
    assert "teacher_check" not in plain and all(h["type"] != "TeacherCheckHook" for h in plain.custom_hooks)

    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None  # no validation: nothing to check against
    assert all(h["type"] != "TeacherCheckHook" for h in expand_distill_config(cfg.copy()).custom_hooks)
    with pytest.raises(ValueError, match="give both, or set teacher_check=None"):
        expand_distill_config(Config(dict(cfg.to_dict(), teacher_check=dict(min_map=0.1))))
    with pytest.raises(ValueError, match=r"Unknown teacher_check keys \['min_mAP'\]"):
        expand_distill_config(distill_config(data_root, teacher_ckpt, tmp_path, min_mAP=0.1))

    off = distill_config(data_root, teacher_ckpt, tmp_path)
    off.teacher_check = None
    runner = Runner.from_cfg(expand_distill_config(off))
    runner.train()  # the random teacher is not checked
    assert runner.iter == 1 and not [h for h in runner.hooks if isinstance(h, TeacherCheckHook)]
