"""Heterogeneous pairs of configs/toy/hetero_*.py: level pairs, connectors, a real Runner run, build errors."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import build_plain, two_iterations
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from kdtools.config import expand_distill_config

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "configs/toy"

# the RetinaNet toy teacher of pairs 3 and 4 (configs/_base_/toy_teacher.py); its FPN width is read from its config
TOY_TEACHER_C = Config.fromfile(str(TOY / "retinanet_toy_teacher.py")).model.neck.out_channels

# config -> the DFMSD level pairs it must give: (name, student index, teacher index, student C, teacher C)
PAIRS = {
    "hetero_faster_retina_toy.py": [  # Faster R-CNN P2-P6 teacher, RetinaNet P3-P7 student: shared P3-P6
        ("p3", 0, 1, 64, 64), ("p4", 1, 2, 64, 64), ("p5", 2, 3, 64, 64), ("p6", 3, 4, 64, 64)],
    "hetero_convnext_retina_toy.py": [  # ConvNeXt RetinaNet teacher, ResNet RetinaNet student: both P3-P7
        (f"p{i + 3}", i, i, 64, 64) for i in range(5)],
    "hetero_slim_retina_toy.py": [  # 32-ch P3-P5 student, P3-P7 teacher: P3-P5
        (f"p{i + 3}", i, i, 32, TOY_TEACHER_C) for i in range(3)],
    "hetero_mobilenet_retina_toy.py": [  # MobileNetV3 48-ch student, ResNet teacher: both P3-P7
        (f"p{i + 3}", i, i, 48, TOY_TEACHER_C) for i in range(5)],
}
# pairs whose FPN widths differ use connector='conv1x1'; the others none
CONNECTOR = {name: pairs[0][3] != pairs[0][4] for name, pairs in PAIRS.items()}
# student parameters that feed only undistilled levels: the distillation losses must not reach them
UNDISTILLED = {"hetero_faster_retina_toy.py": ("neck.fpn_convs.4.",)}  # the student's P7


def level_pairs(distiller) -> list[tuple]:
    return [(lv.name, lv.student_index, lv.teacher_index, lv.student_channels, lv.teacher_channels)
            for lv in distiller.levels]


@pytest.fixture(scope="module")
def teacher_ckpts(tmp_path_factory):
    """config path -> a checkpoint of that teacher with random weights, written once per module."""
    folder = tmp_path_factory.mktemp("hetero_teachers")
    saved: dict[str, str] = {}

    def ckpt(config: str) -> str:
        key = str(Path(config).resolve())
        if key not in saved:
            torch.manual_seed(0)
            path = folder / f"{Path(key).stem}.pth"
            torch.save({"state_dict": build_plain(key).state_dict(), "meta": {}}, path)
            saved[key] = str(path)
        return saved[key]

    return ckpt


def pair_config(name: str, toy_root: str, teacher_ckpts, work_dir: Path | None = None, **distill: object) -> Config:
    """configs/toy/<name> with random-weight teachers, the tiny toy data, 2 iterations, no validation."""
    cfg = Config.fromfile(str(TOY / name))
    if "teacher" in cfg:
        cfg.teacher.checkpoint = teacher_ckpts(cfg.teacher.config)
    for stage in cfg.get("stages", []):
        stage.teacher = dict(stage.teacher, checkpoint=teacher_ckpts(stage.teacher["config"]))
    cfg.distill = [dict(d, **distill) for d in cfg.distill]
    two_iterations(cfg, toy_root)
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    return cfg


def build(cfg: Config):
    from mmdet.registry import MODELS

    return MODELS.build(expand_distill_config(cfg).model)


class Snapshot(Hook):
    """The trainable student and connector weights, and the teacher's, as training starts (after init)."""

    def before_train(self, runner) -> None:
        model = runner.model
        self.student = {k: v.detach().clone() for k, v in model.student.named_parameters()}
        self.connectors = {k: v.detach().clone() for k, v in model.distillers.named_parameters() if "connectors" in k}
        self.teacher = {k: v.clone() for k, v in model.teacher.model.state_dict().items()}


# ------------------------------------------------------------------ each pair through the Runner
@pytest.mark.parametrize("name", list(PAIRS))
def test_pair_trains_with_matched_levels_and_aligned_features(name, toy_root, teacher_ckpts, tmp_path):
    runner = Runner.from_cfg(expand_distill_config(pair_config(name, toy_root, teacher_ckpts, tmp_path)))
    snapshot = Snapshot()
    runner.register_hook(snapshot)
    runner.train()
    model = runner.model
    assert runner.iter == 2

    # the level pairs: names (strides), indices into each neck and channels
    (distiller,) = model.distillers
    assert level_pairs(distiller) == PAIRS[name]
    names = [pair[0] for pair in PAIRS[name]]

    # the Runner logged every matched level's distillation loss, and only those, all finite
    scalars = runner.message_hub.log_scalars
    logged = {k.removeprefix("train/") for k in scalars if k.startswith("train/loss_dfmsd")}
    assert logged == {f"loss_dfmsd_{n}" for n in names}
    for key in logged | {"loss_cls", "loss_bbox"}:
        value = scalars[f"train/{key}"].current()
        assert math.isfinite(value), (key, value)
    assert all(scalars[f"train/loss_dfmsd_{n}"].current() > 0 for n in names)

    # the optimizer moved the student and the connectors, never the teacher
    assert any(not torch.equal(p, snapshot.student[k]) for k, p in model.student.named_parameters())
    assert all(not torch.equal(p, snapshot.connectors[k])
               for k, p in model.distillers.named_parameters() if k in snapshot.connectors)
    assert all(torch.equal(v, snapshot.teacher[k]) for k, v in model.teacher.model.state_dict().items())

    # one batch: matched levels have the same stride; connectors, one per level where configured, map each student
    # level to its teacher level's exact shape
    assert len(distiller.connectors) == (len(names) if CONNECTOR[name] else 0)
    batch = next(iter(runner.train_dataloader))
    data = model.data_preprocessor(batch, True)
    inputs, samples = data["inputs"], data["data_samples"]
    student_feats = model.student.extract_feat(inputs)
    teacher_feats = model.teacher.records(inputs, samples).levels(["neck"])
    aligned_levels = distiller.aligned_levels(student_feats, teacher_feats)
    for i, (level, (aligned, teacher)) in enumerate(zip(distiller.levels, aligned_levels, strict=True)):
        student = student_feats[level.student_index]
        assert student.shape[1] == level.student_channels and teacher.shape[1] == level.teacher_channels
        assert student.shape[-2:] == teacher.shape[-2:], f"{level.name}: matched levels differ in stride"
        assert aligned.shape == teacher.shape == teacher_feats[level.teacher_index].shape
        if CONNECTOR[name]:
            proj = distiller.connectors[i].proj
            assert (proj.in_channels, proj.out_channels) == (level.student_channels, level.teacher_channels)
        else:
            assert aligned.data_ptr() == student.data_ptr()  # compared as it is

    # the distillation losses alone reach the student's backbone, its distilled FPN outputs and the connectors,
    # not its head
    model.zero_grad(set_to_none=True)
    losses = model.loss(inputs, samples)
    sum(v for k, v in losses.items() if k.startswith("loss_dfmsd")).backward()

    def reached(module: torch.nn.Module) -> list[bool]:
        return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters() if p.requires_grad]

    assert any(reached(model.student.backbone))
    for i in range(len(names)):  # the output conv of every distilled student level
        conv = model.student.neck.fpn_convs[PAIRS[name][i][1]]
        assert all(reached(conv)), f"no gradient in the student's {names[i]} output conv"
    if CONNECTOR[name]:
        assert all(reached(distiller.connectors))
    assert not any(reached(model.student.bbox_head))
    for prefix in UNDISTILLED.get(name, ()):
        params = [p for k, p in model.student.named_parameters() if k.startswith(prefix)]
        assert params and all(p.grad is None or not p.grad.any() for p in params), prefix
    assert all(p.grad is None for p in model.teacher.model.parameters())


# ------------------------------------------------------------------ the stage-wise pair (no training needed)
def test_stagewise_pair_matches_each_teacher_by_stride(toy_root, teacher_ckpts):
    model = build(pair_config("hetero_stagewise_faster_retina_toy.py", toy_root, teacher_ckpts))
    (distiller,) = model.distillers
    assert type(model.teacher.model.backbone).__name__ == "TimmBackbone"
    assert level_pairs(distiller) == [(f"p{i + 3}", i, i, 64, 64) for i in range(4)]
    model.set_stage(1)
    assert model.teacher.model.neck.start_level == 0 and type(model.teacher.model).__name__ == "FasterRCNN"
    assert level_pairs(distiller) == [(f"p{i + 3}", i, i + 1, 64, 64) for i in range(4)]


# ------------------------------------------------------------------ impossible mappings stop the build
def test_student_and_teacher_levels_of_unequal_length(toy_root, teacher_ckpts):
    cfg = pair_config("hetero_faster_retina_toy.py", toy_root, teacher_ckpts, teacher_levels=[1, 2, 3])
    with pytest.raises(ValueError, match=r"student_levels \[0, 1, 2, 3\] and teacher_levels \[1, 2, 3\] differ in "
                                         r"length; give one teacher level per student level \(student levels: #0"):
        build(cfg)


def test_channels_differ_without_connector(toy_root, teacher_ckpts):
    cfg = pair_config("hetero_slim_retina_toy.py", toy_root, teacher_ckpts, connector=None)
    with pytest.raises(ValueError, match=rf"level p3 \(student #0, teacher #0\): student has 32 channels, teacher "
                                         rf"{TOY_TEACHER_C}\. Add connector='conv1x1'"):
        build(cfg)


def test_levels_of_different_strides_without_connector(toy_root, teacher_ckpts):
    """Index-wise pairing of P3-P7 with P2-P6: student #0 (P3) with teacher #0 (P2), both 64 channels."""
    cfg = pair_config("hetero_faster_retina_toy.py", toy_root, teacher_ckpts, connector=None,
                      student_levels=[0, 1, 2, 3], teacher_levels=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"level p3 \(student #0, teacher #0\): student feature is \(32, 32\), "
                                         r"teacher \(64, 64\)\. Add connector='resize' \(or 'conv1x1'\).*"
                                         r"student_levels/teacher_levels"):
        build(cfg)


def test_teacher_levels_the_student_has_no_stride_for(toy_root, teacher_ckpts):
    """The slim student stops at P5: the teacher's P6 and P7 have no partner of the same stride."""
    cfg = pair_config("hetero_slim_retina_toy.py", toy_root, teacher_ckpts, teacher_levels=[3, 4])
    with pytest.raises(ValueError, match=r"cannot match levels by stride\. Student levels: #0: 32x32x32, "
                                         r"#1: 32x16x16, #2: 32x8x8; .*Set student_levels=\[\.\.\.\] and "
                                         r"teacher_levels=\[\.\.\.\]"):
        build(cfg)


def test_student_levels_the_slim_neck_does_not_have(toy_root, teacher_ckpts):
    cfg = pair_config("hetero_slim_retina_toy.py", toy_root, teacher_ckpts, student_levels=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"student_levels \[0, 1, 2, 3\] name levels \[3\] that the student tap "
                                         r"does not have; it has 3 levels"):
        build(cfg)


def test_fixed_teacher_levels_across_unlike_stage_teachers(toy_root, teacher_ckpts):
    """teacher_levels=[1, 2, 3, 4] is P3-P6 of the Faster R-CNN teacher but P4-P7 of the ConvNeXt RetinaNet teacher;
    a connector lets the first stage build, the second teacher's shapes then differ."""
    cfg = pair_config("hetero_stagewise_faster_retina_toy.py", toy_root, teacher_ckpts,
                      teacher_levels=[1, 2, 3, 4], connector="conv1x1")
    with pytest.raises(ValueError, match=r"stage 1's teacher gives .*Fix the levels with student_levels=\[\.\.\.\]"):
        build(cfg)
