"""TimmBackbone: reported channels/strides, NCHW outputs, frozen stages, norm_eval, checkpoints, errors, mmdet use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import timm
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

from kdtools.backbones import TimmBackbone, timm_feature_info

SIZE = 64
TINY_SWIN = {"img_size": SIZE, "window_size": 2, "embed_dim": 24, "depths": (1, 1, 1, 1), "num_heads": (1, 1, 1, 1)}

# model name, out_indices, model_kwargs
FAMILIES = [
    ("resnet18", (1, 2, 3), {}),
    ("convnext_atto", (0, 1, 2, 3), {}),
    ("mobilenetv3_small_100", (1, 2, 3, 4), {}),
    ("swin_tiny_patch4_window7_224", (0, 1, 2, 3), TINY_SWIN),
]

# model name, frozen_stages, parameter prefixes that must be frozen (exactly), first prefix that must train
FROZEN = [
    ("resnet18", 2, ("model.conv1.", "model.bn1.", "model.layer1."), "model.layer2."),
    ("convnext_atto", 2, ("model.stem_0.", "model.stem_1.", "model.stages_0.", "model.stages_1."), "model.stages_2."),
    ("mobilenetv3_small_100", 2, ("model.conv_stem.", "model.bn1.", "model.blocks.0."), "model.blocks.1."),
]


def images(batch: int = 1) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(batch, 3, SIZE, SIZE)


def bn_buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: buf.clone()
        for name, buf in module.named_buffers()
        if name.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }


def train_step(backbone: TimmBackbone) -> dict[str, torch.Tensor]:
    """One SGD step over all parameters; returns the parameters before the step."""
    before = {name: p.detach().clone() for name, p in backbone.named_parameters()}
    optimizer = torch.optim.SGD(backbone.parameters(), lr=0.1, weight_decay=1e-2)
    backbone.train()
    loss = sum(feature.square().mean() for feature in backbone(images(2)))
    loss.backward()
    optimizer.step()
    return before


# ---------------------------------------------------------------- channels, strides, layout


@pytest.mark.parametrize(("name", "out_indices", "kwargs"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_outputs_match_reported_channels_and_strides(name: str, out_indices: tuple[int, ...], kwargs: dict) -> None:
    backbone = TimmBackbone(name, out_indices=out_indices, model_kwargs=kwargs).eval()
    with torch.no_grad():
        outputs = backbone(images())
    assert isinstance(outputs, tuple) and len(outputs) == len(out_indices)
    assert (backbone.out_channels, backbone.strides) == timm_feature_info(name, out_indices, **kwargs)
    for output, channels, stride in zip(outputs, backbone.out_channels, backbone.strides, strict=True):
        assert output.shape == (1, channels, SIZE // stride, SIZE // stride)


def test_known_resnet18_and_convnext_feature_info() -> None:
    assert timm_feature_info("resnet18", (1, 2, 3)) == ([64, 128, 256], [4, 8, 16])
    assert timm_feature_info("resnet18", (-2, -1)) == ([256, 512], [16, 32])
    assert timm_feature_info("convnext_atto", (0, 1, 2, 3)) == ([40, 80, 160, 320], [4, 8, 16, 32])


def test_swin_nhwc_features_are_permuted_to_nchw() -> None:
    backbone = TimmBackbone("swin_tiny_patch4_window7_224", out_indices=(0, 1, 2, 3), model_kwargs=TINY_SWIN).eval()
    with torch.no_grad():
        raw = backbone.model(images())
        outputs = backbone(images())
    for nhwc, nchw, channels in zip(raw, outputs, backbone.out_channels, strict=True):
        assert nhwc.shape[-1] == channels
        assert nchw.is_contiguous()
        torch.testing.assert_close(nchw, nhwc.permute(0, 3, 1, 2), rtol=0, atol=0)


# ---------------------------------------------------------------- frozen stages and norm_eval


@pytest.mark.parametrize(("name", "frozen_stages", "frozen", "trained"), FROZEN, ids=[f[0] for f in FROZEN])
def test_frozen_stages_stay_fixed_under_an_optimizer_step(
    name: str, frozen_stages: int, frozen: tuple[str, ...], trained: str
) -> None:
    backbone = TimmBackbone(name, out_indices=(1, 2, 3), frozen_stages=frozen_stages)
    params = dict(backbone.named_parameters())
    assert {n for n, p in params.items() if not p.requires_grad} == {n for n in params if n.startswith(frozen)}
    frozen_buffers = {n: b for n, b in bn_buffers(backbone).items() if n.startswith(frozen)}

    before = train_step(backbone)

    for module_name, module in backbone.named_modules():
        if f"{module_name}.".startswith(frozen):
            assert not module.training, module_name
    for n, param in params.items():
        if n.startswith(frozen):
            assert torch.equal(param, before[n]), n
    for n, buf in bn_buffers(backbone).items():
        if n in frozen_buffers:
            assert torch.equal(buf, frozen_buffers[n]), n
    later = [n for n in params if n.startswith(trained)]
    assert later and all(params[n].requires_grad for n in later)
    assert all(not torch.equal(params[n], before[n]) for n in later if params[n].grad.abs().sum() > 0)
    assert any(not torch.equal(params[n], before[n]) for n in later)


def test_frozen_stages_zero_freezes_only_the_stem() -> None:
    backbone = TimmBackbone("convnext_atto", out_indices=(0, 1), frozen_stages=0)
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("model.stem_") for n in frozen)


@pytest.mark.parametrize("norm_eval", [True, False])
def test_norm_eval_keeps_batchnorm_statistics(norm_eval: bool) -> None:
    backbone = TimmBackbone("resnet18", out_indices=(1, 2, 3), norm_eval=norm_eval)
    stats = bn_buffers(backbone)
    backbone.train()
    assert backbone.training and backbone.model.layer1[0].conv1.training
    assert backbone.model.bn1.training is not norm_eval
    backbone(images(2))
    unchanged = [torch.equal(buf, stats[n]) for n, buf in bn_buffers(backbone).items()]
    assert all(unchanged) if norm_eval else not any(unchanged)


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_of_the_feature_model_reproduces_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = TimmBackbone("mobilenetv3_small_100", out_indices=(1, 2, 3)).eval()
    path = tmp_path / "features.pth"
    torch.save({"model": source.model.state_dict()}, path)
    torch.manual_seed(1)
    fresh = TimmBackbone("mobilenetv3_small_100", out_indices=(1, 2, 3)).eval()
    torch.manual_seed(1)
    loaded = TimmBackbone("mobilenetv3_small_100", out_indices=(1, 2, 3), checkpoint=str(path)).eval()
    with torch.no_grad():
        expected, before, actual = source(images()), fresh(images()), loaded(images())
    assert not torch.equal(before[0], expected[0])
    for e, a in zip(expected, actual, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


def test_classifier_checkpoint_with_container_prefix_and_flattened_names(tmp_path: Path) -> None:
    torch.manual_seed(1)
    classifier = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **TINY_SWIN).eval()
    path = tmp_path / "classifier.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in classifier.state_dict().items()}, "epoch": 3}, path)

    backbone = TimmBackbone(
        "swin_tiny_patch4_window7_224", out_indices=(1, 2, 3), checkpoint=str(path), model_kwargs=TINY_SWIN
    ).eval()
    assert "layers_1.blocks.0.attn.qkv.weight" in backbone.model.state_dict()
    with torch.no_grad():
        expected = classifier.forward_intermediates(images(), indices=(1, 2, 3), intermediates_only=True)
        actual = backbone(images())
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


def test_checkpoint_with_missing_keys_is_rejected(tmp_path: Path) -> None:
    state = timm.create_model("mobilenetv3_small_100", pretrained=False).state_dict()
    del state["blocks.1.0.conv_pw.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing keys \['blocks\.1\.0\.conv_pw\.weight'\], unexpected keys \[\]"):
        TimmBackbone("mobilenetv3_small_100", out_indices=(1, 2, 3), checkpoint=str(path))


def test_checkpoint_with_unknown_keys_is_rejected(tmp_path: Path) -> None:
    state = timm.create_model("mobilenetv3_small_100", pretrained=False).state_dict()
    path = tmp_path / "extra.pth"
    torch.save({**state, "teacher.proj.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"missing keys \[\], unexpected keys \['teacher\.proj\.weight'\]"):
        TimmBackbone("mobilenetv3_small_100", out_indices=(1, 2, 3), checkpoint=str(path))


# ---------------------------------------------------------------- errors


def test_unknown_model_name_suggests_close_names() -> None:
    with pytest.raises(ValueError, match=r"Unknown timm model 'convnxt_atto'.*convnext_atto"):
        TimmBackbone("convnxt_atto")
    with pytest.raises(ValueError, match=r"resnet18"):
        timm_feature_info("resnet18x", (1, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"out_indices": (1, 5)}, r"\[5\] out of range for 'resnet18'.*valid indices are 0\.\.4"),
        ({"out_indices": (3, 1)}, r"strictly increasing"),
        ({"out_indices": ()}, r"must not be empty"),
        ({"out_indices": (1, 2), "frozen_stages": 4}, r"frozen_stages must be in -1\.\.3"),
    ],
)
def test_bad_indices_raise_helpful_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimmBackbone("resnet18", **kwargs)


# ---------------------------------------------------------------- mmdet integration


def test_builds_from_config_dict() -> None:
    config = {"type": "TimmBackbone", "model_name": "resnet18", "out_indices": (2, 3), "frozen_stages": 1}
    backbone = MODELS.build({**config, "norm_eval": True})
    assert isinstance(backbone, TimmBackbone)
    assert (backbone.out_channels, backbone.strides) == ([128, 256], [8, 16])
    assert backbone.norm_eval
    assert not backbone.model.conv1.weight.requires_grad and backbone.model.layer1[0].conv1.weight.requires_grad


def retinanet_config(backbone: dict[str, Any], in_channels: list[int], strides: list[int]) -> dict[str, Any]:
    """A small RetinaNet whose FPN takes the backbone's reported channels and whose anchors use its strides."""
    head = {
        "type": "RetinaHead",
        "num_classes": 3,
        "in_channels": 32,
        "stacked_convs": 1,
        "feat_channels": 32,
        "anchor_generator": {
            "type": "AnchorGenerator",
            "octave_base_scale": 4,
            "scales_per_octave": 1,
            "ratios": [1.0],
            "strides": strides,
        },
        "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0] * 4, "target_stds": [1.0] * 4},
        "loss_cls": {"type": "FocalLoss", "use_sigmoid": True, "gamma": 2.0, "alpha": 0.25, "loss_weight": 1.0},
        "loss_bbox": {"type": "L1Loss", "loss_weight": 1.0},
    }
    return {
        "type": "RetinaNet",
        "data_preprocessor": {"type": "DetDataPreprocessor", "mean": [0, 0, 0], "std": [1, 1, 1]},
        "backbone": backbone,
        "neck": {
            "type": "FPN",
            "in_channels": in_channels,
            "out_channels": 32,
            "add_extra_convs": "on_input",
            "num_outs": len(strides),
        },
        "bbox_head": head,
        "test_cfg": {
            "nms_pre": 100,
            "min_bbox_size": 0,
            "score_thr": 0.05,
            "nms": {"type": "nms", "iou_threshold": 0.5},
            "max_per_img": 10,
        },
    }


def test_retinanet_with_timm_backbone_and_fpn_from_reported_channels() -> None:
    register_all_modules()
    out_indices = (2, 3, 4)
    channels, strides = timm_feature_info("mobilenetv3_small_100", out_indices)
    fpn_strides = [*strides, strides[-1] * 2, strides[-1] * 4]
    backbone = {"type": "TimmBackbone", "model_name": "mobilenetv3_small_100", "out_indices": out_indices}
    detector = MODELS.build(retinanet_config(backbone, channels, fpn_strides)).eval()
    assert isinstance(detector.backbone, TimmBackbone)
    assert detector.backbone.out_channels == channels

    with torch.no_grad():
        features = detector.extract_feat(images(2))
        cls_scores, bbox_preds = detector(images(2), mode="tensor")
    assert [tuple(f.shape) for f in features] == [(2, 32, -(-SIZE // s), -(-SIZE // s)) for s in fpn_strides]
    assert [tuple(c.shape) for c in cls_scores] == [(2, 3, f.shape[2], f.shape[3]) for f in features]
    assert [tuple(b.shape) for b in bbox_preds] == [(2, 4, f.shape[2], f.shape[3]) for f in features]
