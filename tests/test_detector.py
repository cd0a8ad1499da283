"""The distillation detector: losses, gradients, teacher isolation, level matching and bad input."""
from __future__ import annotations

import pytest
import torch
from mmengine.dataset import pseudo_collate

from kdtools.config import expand_distill_config
from kdtools.detectors.levels import match_levels
from kdtools.detectors.teacher import InputAdapter
from kdtools.registry import build_distiller

PKD = dict(type="PKD", connector="conv1x1")


def build(cfg):
    from mmdet.registry import MODELS

    model = MODELS.build(expand_distill_config(cfg).model)
    model.init_weights()
    return model


def a_batch(model, cfg, n: int = 2):
    from mmdet.registry import DATASETS

    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(n)]), training=True)
    return data["inputs"], data["data_samples"]


@pytest.fixture
def model_and_batch(make_config):
    cfg = make_config([PKD])
    model = build(cfg)
    model.train()
    return model, a_batch(model, cfg)


def distill_total(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if k.startswith("loss_pkd"))


def test_losses_are_named_per_level_and_teacher_stays_outside(model_and_batch):
    model, (inputs, samples) = model_and_batch
    losses = model.loss(inputs, samples)
    assert {f"loss_pkd_p{i}" for i in range(3, 8)} <= set(losses)
    assert {"loss_cls", "loss_bbox"} <= set(losses)
    assert not any(k.startswith("teacher") for k in model.state_dict())
    teacher_ids = {id(p) for p in model.teacher.model.parameters()}
    assert teacher_ids and not teacher_ids & {id(p) for p in model.parameters()}
    assert all(not p.requires_grad for p in model.teacher.model.parameters())


def test_gradients_reach_the_student_neck_only(model_and_batch):
    model, (inputs, samples) = model_and_batch
    before = {k: v.clone() for k, v in model.teacher.model.state_dict().items()}
    distill_total(model.loss(inputs, samples)).backward()
    neck = [p.grad for p in model.student.neck.parameters()]
    head = [p.grad for p in model.student.bbox_head.parameters()]
    assert all(g is not None for g in neck) and sum(g.abs().sum() for g in neck) > 0
    assert all(g is None or not g.any() for g in head), "a neck-level distiller must not move the head"
    assert sum(p.grad.abs().sum() for p in model.distillers.parameters()) > 0
    assert all(p.grad is None for p in model.teacher.model.parameters())
    assert all(torch.equal(v, model.teacher.model.state_dict()[k]) for k, v in before.items())


def test_teacher_stays_in_eval_mode_and_keeps_its_bn_statistics(model_and_batch):
    model, (inputs, samples) = model_and_batch
    model.train()
    assert not any(m.training for m in model.teacher.model.modules())
    stats = {k: v.clone() for k, v in model.teacher.model.state_dict().items() if "running" in k}
    model.loss(inputs, samples)
    model.eval()
    model.train()
    assert not model.teacher.model.training and model.student.training
    assert all(torch.equal(v, model.teacher.model.state_dict()[k]) for k, v in stats.items())


def test_teacher_runs_only_as_far_as_the_taps(model_and_batch, monkeypatch):
    model, (inputs, samples) = model_and_batch

    def never(*args, **kwargs):
        raise AssertionError("the teacher head ran")

    monkeypatch.setattr(model.teacher.model.bbox_head, "forward", never)
    assert torch.isfinite(distill_total(model.loss(inputs, samples)))


def test_predict_runs_the_student_alone(model_and_batch):
    model, (inputs, samples) = model_and_batch
    model.eval()
    with torch.no_grad():
        ours = model.predict(inputs, samples)
        plain = model.student.predict(inputs, samples)
    for a, b in zip(ours, plain):
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)


def test_teacher_is_not_in_checkpoints_but_the_distillers_are(model_and_batch):
    model, _ = model_and_batch
    keys = list(model.state_dict())
    assert any(k.startswith("student.") for k in keys)
    assert any(k.startswith("distillers.0.connectors") for k in keys)
    assert "stage" in keys


# ------------------------------------------------------------------ bad input
def test_missing_teacher_checkpoint_names_the_fix(make_config):
    cfg = make_config([PKD])
    cfg.teacher.checkpoint = "nowhere/teacher.pth"
    with pytest.raises(FileNotFoundError, match="teacher.checkpoint"):
        build(cfg)


def test_teacher_checkpoint_of_another_model_lists_keys(make_config, tmp_path):
    cfg = make_config([PKD])
    student = build(make_config([PKD])).student
    bad = tmp_path / "student_as_teacher.pth"
    torch.save({"state_dict": student.state_dict()}, bad)
    cfg.teacher.checkpoint = str(bad)
    with pytest.raises(ValueError, match=r"missing keys: bbox_head.*shape mismatches .*backbone.conv1.weight"):
        build(cfg)


def test_tap_typo_shows_close_names(make_config):
    asked_by = r"Distiller 'pkd' \(PKD\) asks for it; check its student_tap=\['nekc'\]"
    with pytest.raises(KeyError, match=r"Closest module paths: \['neck'.*" + asked_by):
        build(make_config([dict(PKD, student_tap="nekc")]))


def test_levels_the_neck_does_not_have(make_config):
    with pytest.raises(ValueError, match="has 5 levels"):
        build(make_config([dict(PKD, student_levels=[0, 7], teacher_levels=[0, 7])]))


def test_channel_mismatch_without_connector(make_config):
    cfg = make_config([dict(type="PKD", connector=None)])
    cfg.model.neck.out_channels = cfg.model.bbox_head.in_channels = cfg.model.bbox_head.feat_channels = 32
    with pytest.raises(ValueError, match="student has 32 channels, teacher 64.*connector='conv1x1'"):
        build(cfg)


def test_unknown_distiller_keys_and_types():
    with pytest.raises(TypeError, match="did you mean 'loss_weight'"):
        build_distiller(dict(type="PKD", los_weight=1.0))
    with pytest.raises(KeyError, match="did you mean"):
        build_distiller(dict(type="PDK"))


def test_duplicate_distiller_names(make_config):
    with pytest.raises(ValueError, match="repeat"):
        build(make_config([PKD, PKD]))


# ------------------------------------------------------------ level matching
def test_levels_match_by_stride_between_unlike_necks():
    d = build_distiller(dict(type="PKD", connector="conv1x1"))
    student = [(64, 32 // 2**i, 32 // 2**i) for i in range(5)]  # P3-P7 of a 256 probe
    teacher = [(256, 64 // 2**i, 64 // 2**i) for i in range(5)]  # P2-P6
    pairs = match_levels(d, student, teacher, probe_size=256)
    assert [(p.name, p.student_index, p.teacher_index) for p in pairs] == [
        ("p3", 0, 1), ("p4", 1, 2), ("p5", 2, 3), ("p6", 3, 4)
    ]


def test_levels_that_cannot_be_matched_fail_clearly():
    d = build_distiller(dict(type="PKD", connector="conv1x1"))
    with pytest.raises(ValueError, match="student_levels=.*teacher_levels"):
        match_levels(d, [(64, 30, 30)], [(64, 16, 16)], probe_size=256)


def test_input_adapter_renormalises_for_the_teacher():
    raw = torch.rand(2, 3, 8, 8) * 255
    s_dp = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    t_dp = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
    student_in = (raw[:, [2, 1, 0]] - torch.tensor(s_dp["mean"]).view(1, 3, 1, 1)) / torch.tensor(s_dp["std"]).view(
        1, 3, 1, 1)
    teacher_in = raw - torch.tensor(t_dp["mean"]).view(1, 3, 1, 1)
    torch.testing.assert_close(InputAdapter(s_dp, t_dp)(student_in), teacher_in, rtol=1e-5, atol=1e-3)
    assert InputAdapter(s_dp, s_dp).identity
