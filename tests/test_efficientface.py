"""EfficientFace: RFE, attention and neck shapes, receptive fields, exact sizes; the configs train, load, build."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import save_random_checkpoint, two_iterations
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from kdtools.benchmarking import detector_complexity
from kdtools.config import expand_distill_config
from kdtools.necks import RFE, EfficientFaceNeck, OcclusionAttention
from kdtools.necks.efficientface import FusionNode

ROOT = Path(__file__).resolve().parents[1]
BCCD = ROOT / "configs/bccd"
STRIDES = (8, 16, 32)
IN_CHANNELS = [8, 12, 16]


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_bn(cin: int, cout: int, kh: int, kw: int) -> int:
    """A bias-free conv followed by BatchNorm (weight and bias)."""
    return kh * kw * cin * cout + 2 * cout


def separable_bn(c: int) -> int:
    """mmcv's DepthwiseSeparableConvModule c -> c, 3x3, BatchNorm after both convs."""
    return 9 * c + 2 * c + c * c + 2 * c


def rfe_params(c: int, kernels: tuple[int, ...], mode: str) -> int:
    mid = c // 4
    asymmetric = sum(conv_bn(mid, mid, 1, k) for k in kernels) * 2 * (2 if mode == "cascade" else 1)
    branches = 1 + 2 * len(kernels)
    return branches * conv_bn(c, mid, 1, 1) + asymmetric + conv_bn(branches * mid, c, 1, 1)


def attention_params(c: int, reduction: int, kernel: int) -> int:
    hidden = c // reduction
    return (c * hidden + hidden) + (hidden * c + c) + (2 * kernel * kernel + 1)


def features(batch: int, height: int, width: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(batch, c, -(-height // s), -(-width // s)) for c, s in zip(IN_CHANNELS, STRIDES, strict=True)]


# ---------------------------------------------------------------------------------------------------- RFE


def measured_field(module: torch.nn.Module, size: int = 31) -> tuple[int, int, int]:
    """Height, width (bounding box) and number of input pixels that reach the centre output pixel, all weights
    positive and BatchNorm the identity, so that no path cancels."""
    module.eval()
    for name, param in module.named_parameters():
        param.data.fill_(0.0 if name.endswith("bias") else 0.1)
    x = (torch.rand(1, module.channels, size, size) + 0.1).requires_grad_(True)
    module(x)[0, :, size // 2, size // 2].sum().backward()
    reached = x.grad[0].abs().sum(0) > 0
    rows, cols = reached.any(1).nonzero(), reached.any(0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1), int(reached.sum())


@pytest.mark.parametrize(("kernels", "mode", "dilation", "field", "pixels"), [
    ((3, 5), "split", 1, (5, 5), 9),          # a cross: the 1x5 and 5x1 branches (the 1x3, 3x1 ones inside)
    ((3, 5), "cascade", 1, (5, 5), 25),       # 1x5 then 5x1: the full 5x5 square
    ((3, 7), "split", 2, (13, 13), 13),       # dilated: every second pixel of a 13-pixel cross
    ((3,), "cascade", 3, (7, 7), 9),          # dilated 3x3 square: 3 x 3 pixels
])
def test_rfe_keeps_shape_and_reports_the_measured_receptive_field(kernels, mode, dilation, field, pixels):
    rfe = RFE(16, kernels=kernels, mode=mode, dilation=dilation)
    x = torch.randn(2, 16, 13, 9)
    assert rfe(x).shape == x.shape
    # analytically: (k_max - 1) * d + 1 along both axes
    assert rfe.receptive_field == field == ((max(kernels) - 1) * dilation + 1,) * 2
    assert measured_field(rfe) == (*field, pixels)


@pytest.mark.parametrize("mode", ["split", "cascade"])
def test_rfe_parameter_count(mode):
    assert num_params(RFE(32, kernels=(3, 5), mode=mode)) == rfe_params(32, (3, 5), mode)


def test_rfe_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="'split', 'cascade'"):
        RFE(16, mode="diagonal")
    with pytest.raises(ValueError, match="odd sizes"):
        RFE(16, kernels=(3, 4))


# ---------------------------------------------------------------------------------------------------- attention


@pytest.mark.parametrize("order", ["sequential", "parallel"])
def test_attention_is_x_times_channel_times_spatial_attention(order):
    torch.manual_seed(0)
    att = OcclusionAttention(32, reduction=8, spatial_kernel=7, order=order)
    x = torch.randn(2, 32, 11, 7)
    w1, b1 = att.mlp[0].weight.flatten(1), att.mlp[0].bias
    w2, b2 = att.mlp[2].weight.flatten(1), att.mlp[2].bias

    def mlp(v: torch.Tensor) -> torch.Tensor:
        return F.linear(F.relu(F.linear(v, w1, b1)), w2, b2)

    channel = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.flatten(2).max(2).values))[:, :, None, None]
    z = x * channel if order == "sequential" else x
    pooled = torch.stack([z.mean(1), z.max(1).values], 1)
    spatial = torch.sigmoid(F.conv2d(pooled, att.spatial.weight, att.spatial.bias, padding=3))
    out = att(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, x * channel * spatial)
    assert num_params(att) == attention_params(32, 8, 7)


# ---------------------------------------------------------------------------------------------------- neck


def neck(**kwargs: object) -> EfficientFaceNeck:
    return EfficientFaceNeck(**{"in_channels": IN_CHANNELS, "out_channels": 16, "num_outs": 5, **kwargs})


@pytest.mark.parametrize(("fusion", "bottom_up"), [("sbifpn", "parallel"), ("sbifpn", "sequential"), ("fpn", None)])
def test_neck_outputs_have_the_strides_of_p3_to_p7(fusion, bottom_up):
    model = neck(fusion=fusion, **({"bottom_up": bottom_up} if bottom_up else {})).eval()
    height, width = 100, 130  # not multiples of the strides: sizes round up as stride-2 convs do
    with torch.no_grad():
        outputs = model(features(2, height, width))
    assert isinstance(outputs, tuple) and len(outputs) == 5
    for level, out in enumerate(outputs):
        stride = 8 * 2 ** level
        assert out.shape == (2, 16, math.ceil(height / stride), math.ceil(width / stride))


def plain_fpn_params(c: int, num_outs: int, depthwise: bool) -> int:
    laterals = sum(conv_bn(cin, c, 1, 1) for cin in IN_CHANNELS)
    extras = conv_bn(IN_CHANNELS[-1], c, 3, 3) + conv_bn(c, c, 3, 3) * (num_outs - len(IN_CHANNELS) - 1)
    node = separable_bn(c) if depthwise else conv_bn(c, c, 3, 3)
    return laterals + extras + num_outs * node


@pytest.mark.parametrize("depthwise", [False, True])
def test_fpn_mode_without_modules_is_a_plain_fpn_of_exact_size(depthwise):
    model = neck(fusion="fpn", rfe=False, attention=False, depthwise=depthwise)
    assert num_params(model) == plain_fpn_params(16, 5, depthwise)
    assert model.fusion_weights() == []


def test_sbifpn_adds_weighted_top_down_bottom_up_and_output_nodes():
    node = conv_bn(16, 16, 3, 3)
    # parallel: 4 top-down nodes (2 inputs), 4 bottom-up nodes (2 inputs), 5 output nodes (2, 3, 3, 3, 2 inputs)
    parallel = neck(rfe=False, attention=False)
    fpn_base = plain_fpn_params(16, 5, False) - 5 * node
    assert num_params(parallel) == fpn_base + 13 * node + (4 * 2 + 4 * 2 + 2 + 3 * 3 + 2)
    # sequential (BiFPN): 4 top-down nodes (2 inputs), 4 bottom-up nodes (3, 3, 3, 2 inputs)
    sequential = neck(bottom_up="sequential", rfe=False, attention=False)
    assert num_params(sequential) == fpn_base + 8 * node + (4 * 2 + 3 * 3 + 2)


@pytest.mark.parametrize("fusion", ["sbifpn", "fpn"])
def test_module_toggles_change_the_size_by_one_module_per_level(fusion):
    full = num_params(neck(fusion=fusion))
    assert full - num_params(neck(fusion=fusion, rfe=False)) == 5 * rfe_params(16, (3, 5), "split")
    assert full - num_params(neck(fusion=fusion, attention=False)) == 5 * attention_params(16, 16, 7)
    assert num_params(neck(fusion=fusion, num_repeats=2)) > full


def test_fusion_weights_stay_non_negative_and_normalised():
    torch.manual_seed(0)
    model = neck(rfe=False, attention=False)
    nodes = [m for m in model.modules() if isinstance(m, FusionNode)]
    assert len(nodes) == 13 and all(node.weight is not None for node in nodes)
    nodes[0].weight.data = torch.tensor([-1.0, 3.0])
    torch.testing.assert_close(nodes[0].fusion_weights(), torch.tensor([0.0, 3.0]) / (3.0 + 1e-4))
    optimizer = torch.optim.SGD(model.parameters(), lr=5.0)
    for _ in range(3):  # large steps push many raw weights below zero
        optimizer.zero_grad()
        sum(out.mean() for out in model(features(2, 64, 64))).backward()
        optimizer.step()
    raw = torch.cat([node.weight for node in nodes])
    assert (raw < 0).any()
    for weights in model.fusion_weights():
        assert (weights >= 0).all() and weights.sum() <= 1.0 + 1e-6


def test_neck_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="'sbifpn', 'fpn'"):
        neck(fusion="bifpn")
    with pytest.raises(ValueError, match="'parallel', 'sequential'"):
        neck(bottom_up="dense")
    with pytest.raises(ValueError, match="raise num_outs"):
        neck(num_outs=2)


# ---------------------------------------------------------------------------------------------------- configs


def test_bccd_student_is_no_heavier_than_the_retinanet_student():
    params, flops = detector_complexity(BCCD / "efficientface_bccd.py")
    retina_params, retina_flops = detector_complexity(BCCD / "retinanet_bccd_student.py")
    assert params <= retina_params and flops <= retina_flops
    model = MODELS.build(Config.fromfile(str(BCCD / "efficientface_bccd.py")).model)
    assert detector_complexity(model) == (num_params(model), flops)  # a built model: the same count
    assert detector_complexity(BCCD / "dfmsd_retina_efficientface_bccd.py") == (params, flops)  # its student


def test_ablations_turn_off_one_module_each():
    base = Config.fromfile(str(BCCD / "efficientface_bccd.py")).model.neck
    changed = {"fpn.py": {"fusion": "fpn"}, "rfe.py": {"rfe": True}, "no_attention.py": {"attention": False}}
    assert sorted(p.name for p in (BCCD / "efficientface_ablations").glob("*.py")) == sorted(changed)
    for name, change in changed.items():
        ablated = Config.fromfile(str(BCCD / "efficientface_ablations" / name)).model.neck
        assert {k: v for k, v in ablated.items() if base.get(k) != v} == change, name


class NeckGradients(Hook):
    """Records, in every backward pass, whether each neck parameter got a finite, non-zero gradient."""

    def before_train(self, runner) -> None:
        self.reached: dict[str, bool] = {}
        for name, param in runner.model.neck.named_parameters():
            param.register_hook(lambda grad, name=name: self._record(name, grad))

    def _record(self, name: str, grad: torch.Tensor) -> None:
        ok = bool(torch.isfinite(grad).all() and grad.abs().sum() > 0)
        self.reached[name] = self.reached.get(name, False) or ok


def test_efficientface_trains_on_toy_data_with_the_runner(toy_root, tmp_path):
    cfg = Config.fromfile(str(ROOT / "configs/toy/retinanet_toy_student.py"))
    cfg.model = Config.fromfile(str(ROOT / "configs/_base_/models/efficientface_student.py")).model
    two_iterations(cfg, toy_root)
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    hook = NeckGradients()
    runner.register_hook(hook)
    runner.train()
    assert runner.iter == 2
    assert isinstance(runner.model.neck, EfficientFaceNeck)
    scalars = runner.message_hub.log_scalars
    for key in ("loss", "loss_cls", "loss_bbox"):
        assert math.isfinite(scalars[f"train/{key}"].current()), key
    names = [name for name, _ in runner.model.neck.named_parameters()]
    assert hook.reached.keys() == set(names) and all(hook.reached.values())
    assert sum(bool(re.search(r"_nodes\.\d+\.weight$", n)) for n in names) == 13  # the fusion weights among them


def test_dfmsd_into_efficientface_pairs_p3_to_p7(tmp_path):
    cfg = Config.fromfile(str(BCCD / "dfmsd_retina_efficientface_bccd.py"))
    ckpt = save_random_checkpoint(BCCD / "retinanet_bccd_teacher.py", tmp_path / "teacher.pth")
    for stage in cfg.stages:
        stage.teacher = dict(stage.teacher, checkpoint=ckpt)
    cfg.teacher.checkpoint = ckpt
    model = MODELS.build(expand_distill_config(cfg).model)
    assert isinstance(model.student.neck, EfficientFaceNeck)
    (distiller,) = model.distillers
    assert [(lv.name, lv.student_channels, lv.teacher_channels) for lv in distiller.levels] == [
        (f"p{i}", 64, 64) for i in range(3, 8)]


def test_wider_face_config_loads_builds_and_loads_backbone_weights(tmp_path):
    cfg = Config.fromfile(str(ROOT / "configs/efficientface/efficientface_wider_face.py"))
    assert cfg.train_dataloader.dataset.type == "WIDERFaceDataset"
    assert cfg.train_dataloader.dataset.ann_file == "train.txt" and cfg.val_dataloader.dataset.ann_file == "val.txt"
    assert cfg.val_evaluator.type == "VOCMetric"
    weights = tmp_path / "efficientnet_b0.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("efficientnet_b0").state_dict(), weights)
    cfg.model.backbone.checkpoint = str(weights)
    model = MODELS.build(cfg.model).eval()
    assert model.bbox_head.num_classes == 1 and model.backbone.out_channels == cfg.model.neck.in_channels
    stem = timm.create_model("efficientnet_b0")
    stem.load_state_dict(torch.load(weights, weights_only=True))
    torch.testing.assert_close(model.backbone.model.conv_stem.weight, stem.conv_stem.weight)
    with torch.no_grad():
        outputs = model.extract_feat(torch.randn(1, 3, 128, 128))
    assert [tuple(f.shape) for f in outputs] == [(1, 64, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128)]
