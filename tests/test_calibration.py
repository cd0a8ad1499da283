"""loss_weight='auto': the weight that keeps a distiller's loss at a ratio of the detection loss."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.model import BaseModel
from test_detector import a_batch, build

from kdtools.calibration import LossCalibration, detection_loss
from kdtools.registry import build_distiller

ROOT = Path(__file__).resolve().parents[1]
RATIO = 0.5


def mgd_total(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if k.startswith("loss_mgd"))


def calibrated_at(make_config, size: int, iters: int = 3) -> tuple[float, float, float]:
    """(calibrated weight, weighted ratio after calibration, unweighted ratio) at ``size`` x ``size`` inputs."""
    cfg = make_config([dict(type="MGD", connector="conv1x1", loss_weight="auto", auto_ratio=RATIO,
                            auto_iters=iters)])
    resize = next(step for step in cfg.train_dataloader.dataset.pipeline if step.type == "Resize")
    resize.scale = (size, size)
    torch.manual_seed(0)
    model = build(cfg).train()
    inputs, samples = a_batch(model, cfg)
    assert tuple(inputs.shape[-2:]) == (size, size)
    with torch.no_grad():
        for _ in range(iters):
            model.loss(inputs, samples)
        losses = model.loss(inputs, samples)
    weight = float(losses["mgd_weight"])
    detection = detection_loss({k: v for k, v in losses.items() if not k.startswith("loss_mgd")})
    ratio = float(mgd_total(losses) / detection)
    return weight, ratio, ratio / weight


def test_two_input_sizes_end_with_the_same_loss_ratio(make_config):
    small = calibrated_at(make_config, 128)
    large = calibrated_at(make_config, 256)
    for _, ratio, _ in (small, large):
        assert ratio == pytest.approx(RATIO, rel=0.1)  # MGD's random mask varies the loss a little
    # The sum / N loss grows with the feature area (4x here); the calibrated weight makes up for it.
    assert large[2] / small[2] > 2.5
    assert small[0] / large[0] == pytest.approx(large[2] / small[2], rel=0.15)


def test_the_weight_is_fixed_after_the_calibration_iterations(make_config):
    cfg = make_config([dict(type="MGD", connector="conv1x1", loss_weight="auto", auto_ratio=RATIO, auto_iters=2)])
    model = build(cfg).train()
    inputs, samples = a_batch(model, cfg)
    calibration = model.distillers[0].calibration
    with torch.no_grad():
        weights = [float(model.loss(inputs, samples)["mgd_weight"]) for _ in range(4)]
    assert int(calibration.steps) == 2 and calibration.done
    assert weights[2] == weights[3] == weights[1] == float(calibration.weight.float())
    assert weights[0] != weights[1]  # the running estimate before the weight is fixed
    expected = RATIO * calibration.detection_sum / calibration.distill_sum
    assert float(calibration.weight) == pytest.approx(float(expected), rel=1e-12)


def test_calibration_state_round_trips():
    first = LossCalibration(0.5, iters=4, owner="mgd")
    for distill, detection in [(2.0, 1.0), (4.0, 3.0)]:
        first.update(torch.tensor(distill), torch.tensor(detection))
    second = LossCalibration(0.5, iters=4, owner="mgd")
    second.load_state_dict(first.state_dict())
    for calibration in (first, second):
        weight = calibration.update(torch.tensor(2.0), torch.tensor(4.0))
        weight = calibration.update(torch.tensor(4.0), torch.tensor(0.0))
        assert calibration.done and float(weight) == 0.5 * 8.0 / 12.0
    assert torch.equal(first.weight, second.weight)


def test_detection_loss_is_the_total_mmengine_optimises():
    losses = {"loss_cls": [torch.tensor([1.0, 3.0]), torch.tensor(0.5)], "loss_bbox": torch.tensor([0.25, 0.75]),
              "acc": torch.tensor(90.0)}
    total, _ = BaseModel.parse_losses(None, losses)  # uses nothing of the model
    assert float(detection_loss(losses)) == float(total) == 3.0


def test_bad_auto_settings_name_the_fix():
    with pytest.raises(ValueError, match="give auto_ratio"):
        build_distiller(dict(type="CWD", loss_weight="auto"))
    with pytest.raises(ValueError, match="loss_weight='auto' only"):
        build_distiller(dict(type="MGD", auto_ratio=0.5))
    with pytest.raises(ValueError, match="a number or 'auto'"):
        build_distiller(dict(type="MGD", loss_weight="automatic"))


def test_loss_ratio_tool_measures_the_ratio_of_a_weight(make_config, tmp_path):
    """tools/loss_ratio.py: on the first iteration (no update yet) the ratio is proportional to the weight."""
    cfg = make_config([dict(type="PKD", connector="conv1x1")])
    config = tmp_path / "pkd.py"
    cfg.dump(str(config))

    def ratio(weight: float) -> float:
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools/loss_ratio.py"), str(config), "--iters", "1", "--loss-weight",
             str(weight), "--work-dir", str(tmp_path / f"w{weight}")],
            cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert result.returncode == 0, result.stderr[-2000:]
        line = next(line for line in result.stdout.splitlines() if line.startswith("pkd: "))
        return float(line.split("= ")[1].split()[0])

    assert ratio(4.0) == pytest.approx(2 * ratio(2.0), rel=1e-3)
