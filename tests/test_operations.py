"""Training operations: exact resume, loss schedules, stages, non-finite guards, bf16, atomic saves."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import ALL_DISTILLERS, TEACHER_CONFIG, build_plain
from mmengine.runner import Runner
from torch import Tensor

from kdtools.checkpoint import atomic_write, load_checkpoint_file
from kdtools.config import expand_distill_config
from kdtools.distillers import BaseDistiller
from kdtools.registry import DISTILLERS
from kdtools.schedules import LossSchedule


@DISTILLERS.register_module(force=True)
class NaNAtP4(BaseDistiller):
    """Test distiller: squared error, NaN on level p4."""

    def level_loss(self, student: Tensor, teacher: Tensor, batch, index: int) -> Tensor:
        loss = (student - teacher).pow(2).mean()
        return loss * math.nan if self.levels[index].name == "p4" else loss


def run(cfg) -> Runner:
    runner = Runner.from_cfg(expand_distill_config(cfg))
    runner.train()
    return runner


def epoch_config(make_config, work_dir: Path, distill: list[dict], max_epochs: int, **top):
    cfg = make_config(distill, work_dir=str(work_dir), **top)
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=100)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1)
    cfg.train_dataloader.dataset.filter_cfg = None
    return cfg


# ------------------------------------------------------------------ schedules
def test_schedule_values():
    warm = LossSchedule.from_config(dict(warmup_iters=4, decay="cosine", min_ratio=0.1, stop_epoch=3))
    assert warm.scale(0, 0, 12) == 0.0 and warm.scale(2, 0, 12) == 0.5
    assert warm.scale(4, 0, 12) == pytest.approx(1.0)
    assert warm.scale(8, 1, 12) == pytest.approx(0.1 + 0.9 * 0.5)
    assert warm.scale(12, 2, 12) == pytest.approx(0.1)
    assert warm.scale(11, 3, 12) == 0.0
    step = LossSchedule.from_config(dict(decay="step", steps=[1, 2], gamma=0.5))
    assert [step.scale(i, e, 9) for i, e in [(0, 0), (3, 1), (6, 2)]] == [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="Unknown schedule keys"):
        LossSchedule.from_config(dict(warmup=3))


# ------------------------------------------------------------- exact resume
@pytest.mark.parametrize("loop", ["epoch", "iter"])
def test_killed_run_resumes_to_identical_weights(make_config, tmp_path, loop):
    # MGD calibrates its weight over 6 iterations: the checkpoint the run resumes from falls inside them.
    distill = [dict(type="MGD", connector="conv1x1", schedule=dict(warmup_iters=5), loss_weight="auto",
                    auto_ratio=0.5, auto_iters=6),
               dict(type="RND", connector="conv1x1")]

    def config(work_dir: Path):
        cfg = epoch_config(make_config, work_dir, distill, max_epochs=2)
        if loop == "iter":
            cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=6, val_interval=100)
            cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=3, by_epoch=False)
            cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
        return cfg

    full = run(config(tmp_path / "full"))
    final = "epoch_2.pth" if loop == "epoch" else "iter_6.pth"
    killed_at = "epoch_1.pth" if loop == "epoch" else "iter_3.pth"
    resumed_cfg = config(tmp_path / "resumed")
    resumed_cfg.resume, resumed_cfg.load_from = True, str(tmp_path / "full" / killed_at)
    resumed = run(resumed_cfg)
    assert resumed.iter == full.iter
    a = load_checkpoint_file(str(tmp_path / "full" / final))
    b = load_checkpoint_file(str(tmp_path / "resumed" / final))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert any(k.endswith(".var") for k in a["state_dict"] if k.startswith("distillers.1."))  # RND statistics
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa if isinstance(sa[k], Tensor))
    assert resumed.model.distillers[0].loss_scale == full.model.distillers[0].loss_scale == 1.0
    calibration = a["state_dict"]["distillers.0.calibration.steps"], a["state_dict"]["distillers.0.calibration.weight"]
    assert int(calibration[0]) == 6 and float(calibration[1]) != 1.0
    assert resumed.model.distillers[0].calibration.done


def test_atomic_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "latest.pth"
    path.write_bytes(b"good checkpoint")

    def dies_halfway(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), dies_halfway)
    assert path.read_bytes() == b"good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pth"]


# ------------------------------------------------------------------- stages
@pytest.fixture(scope="module")
def second_teacher(tmp_path_factory) -> str:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher_b") / "teacher_b.pth"
    torch.save({"state_dict": build_plain(TEACHER_CONFIG).state_dict()}, path)
    return str(path)


def test_stage_hook_switches_teacher_at_the_epoch_and_resumes_into_the_stage(
        make_config, teacher_ckpt, second_teacher, tmp_path):
    stages = [
        dict(epochs=1, teacher=dict(config=str(TEACHER_CONFIG), checkpoint=teacher_ckpt),
             distillers=dict(dfmsd=dict(enhance=0.0))),
        dict(epochs=1, teacher=dict(config=str(TEACHER_CONFIG), checkpoint=second_teacher),
             distillers=dict(dfmsd=dict(enhance=2.0))),
    ]
    teacher_b = torch.load(second_teacher, weights_only=True)["state_dict"]
    key = "neck.fpn_convs.0.conv.weight"

    def config(work_dir, max_epochs):
        cfg = epoch_config(make_config, work_dir, [dict(type="DFMSD", connector="conv1x1")], max_epochs)
        cfg.pop("teacher")
        cfg.stages = stages
        return cfg

    first = run(config(tmp_path, 1))
    assert int(first.model.stage) == 0 and first.model.distiller("dfmsd").enhance == 0.0
    assert not torch.equal(first.model.teacher.model.state_dict()[key], teacher_b[key])

    cfg = config(tmp_path / "resumed", 2)
    cfg.resume, cfg.load_from = True, str(tmp_path / "epoch_1.pth")
    resumed = run(cfg)
    assert int(resumed.model.stage) == 1 and resumed.model.loaded_stage == 1
    assert resumed.model.distiller("dfmsd").enhance == 2.0
    assert torch.equal(resumed.model.teacher.model.state_dict()[key], teacher_b[key])
    assert int(load_checkpoint_file(str(tmp_path / "resumed" / "epoch_2.pth"))["state_dict"]["stage"]) == 1


def test_a_stage_with_the_same_teacher_keeps_it_loaded(make_config, teacher_ckpt, tmp_path):
    from mmdet.registry import MODELS

    teacher = dict(config=str(TEACHER_CONFIG), checkpoint=teacher_ckpt)
    cfg = epoch_config(make_config, tmp_path, [dict(type="DFMSD", connector="conv1x1")], 2)
    cfg.pop("teacher")
    cfg.stages = [dict(epochs=1, teacher=teacher), dict(epochs=1, teacher=teacher, distillers=dict(dfmsd=dict(
        enhance=3.0)))]
    model = MODELS.build(expand_distill_config(cfg).model)
    loaded = model.teacher
    model.set_stage(1)
    assert model.teacher is loaded and model.loaded_stage == 1 and int(model.stage) == 1
    assert model.distiller("dfmsd").enhance == 3.0


def test_stage_settings_reject_unknown_names(make_config, teacher_ckpt):
    from mmdet.registry import MODELS

    cfg = make_config([dict(type="DFMSD", connector="conv1x1")])
    cfg.pop("teacher")
    cfg.stages = [dict(epochs=1, teacher=dict(config=str(TEACHER_CONFIG), checkpoint=teacher_ckpt),
                       distillers=dict(dfmsd=dict(enhanse=1.0)))]
    with pytest.raises(ValueError, match="enhanse"):
        MODELS.build(expand_distill_config(cfg).model)


# ------------------------------------------------------ guards and precision
def build_with(make_config, distill, **top):
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate

    cfg = make_config(distill, **top)
    model = MODELS.build(expand_distill_config(cfg).model)
    model.init_weights()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    return model.train(), data["inputs"], data["data_samples"]


def test_planted_nan_is_caught_with_its_location(make_config):
    model, inputs, samples = build_with(make_config, [dict(type="NaNAtP4", connector="conv1x1")])
    with pytest.raises(FloatingPointError, match=r"loss_nanatp4_p4.*nonfinite='skip'"):
        model.loss(inputs, samples)


def test_nonfinite_skip_drops_the_step_but_keeps_the_graph(make_config):
    model, inputs, samples = build_with(make_config, [dict(type="NaNAtP4", connector="conv1x1")],
                                        nonfinite="skip")
    losses = model.loss(inputs, samples)
    distill = [v for k, v in losses.items() if k.startswith("loss_nanatp4")]
    assert all(torch.equal(v, torch.zeros_like(v)) for v in distill)
    sum(distill).backward()
    assert all(p.grad is not None and not p.grad.any() for p in model.distillers.parameters())


def test_every_distiller_trains_under_bf16_autocast_with_fp32_losses(make_config):
    model, inputs, samples = build_with(make_config, ALL_DISTILLERS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.loss(inputs, samples)
    distill = {k: v for k, v in losses.items()  # logged values (DMKD's fusion weights) are not losses
               if k.startswith("loss_") and not k.startswith(("loss_cls", "loss_bbox"))}
    assert {k.split("_")[1] for k in distill} == {d["name"] for d in ALL_DISTILLERS}
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in distill.values())
    sum(distill.values()).backward()
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0


def test_amp_training_on_cpu_runs_bf16_with_a_half_precision_teacher(make_config, tmp_path):
    from kdtools.training import enable_amp

    cfg = make_config([dict(type="MGD", connector="conv1x1")], work_dir=str(tmp_path), teacher_half=True)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=2, val_interval=100)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == "CPUAmpOptimWrapper"
    runner = Runner.from_cfg(expand_distill_config(cfg))
    seen = {}

    def record(name: str):
        def hook(module, args, out) -> None:
            seen.setdefault(name, out[0].dtype)
        return hook

    runner.model.student.neck.register_forward_hook(record("student"))
    runner.model.teacher.model.neck.register_forward_hook(record("teacher"))
    runner.train()
    assert seen == {"student": torch.bfloat16, "teacher": torch.bfloat16}
    assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar("train/loss_mgd_p3").current()))
