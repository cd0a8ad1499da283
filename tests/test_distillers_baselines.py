"""FGD, MGD, CWD and PKD against hand computations of their published losses."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdtools.distillers import cwd, fgd, mgd, pkd  # noqa: F401  (importing registers them)
from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.registry import build_distiller

INPUT = (32, 32)
LOSS_KEYS = {"FGD": ("fg", "bg", "at", "rela"), "MGD": ("",), "CWD": ("",), "PKD": ("",)}


def level(
    name: str = "p3",
    index: int = 0,
    channels: int = 4,
    size: tuple[int, int] = (8, 8),
    student_channels: int | None = None,
    student_size: tuple[int, int] | None = None,
) -> LevelPair:
    return LevelPair(name, index, index, student_channels or channels, channels, student_size or size, size)


def make(cfg: dict, levels: list[LevelPair]) -> BaseDistiller:
    distiller = build_distiller(cfg)
    distiller.setup(levels)
    return distiller


def boxes_batch(n: int = 2) -> DistillBatch:
    """Image 0 has two overlapping boxes, image 1 one box, any further image none."""
    boxes = [torch.tensor([[0.0, 0.0, 16.0, 12.0], [4.0, 4.0, 8.0, 8.0]]), torch.tensor([[12.0, 20.0, 30.0, 31.0]])]
    boxes = (boxes + [torch.zeros(0, 4)] * n)[:n]
    return DistillBatch(boxes, [INPUT] * n, INPUT)


def features(seed: int, shapes: list[tuple[int, ...]], grad: bool = False) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator).requires_grad_(grad) for shape in shapes]


def softmax_list(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def run_seeded(distiller: BaseDistiller, student: list[Tensor], teacher: list[Tensor], batch: DistillBatch) -> dict:
    torch.manual_seed(123)  # MGD draws its mask from the global generator
    return distiller(student, teacher, batch)


# ---------------------------------------------------------------- common to all four


@pytest.mark.parametrize("method", ["FGD", "MGD", "CWD", "PKD"])
def test_names_gradients_and_linear_weight(method: str) -> None:
    levels = [level("p3", 0, size=(8, 8)), level("p4", 1, size=(4, 4))]
    student = features(0, [(2, 4, 8, 8), (2, 4, 4, 4)], grad=True)
    teacher = features(1, [(2, 4, 8, 8), (2, 4, 4, 4)])
    torch.manual_seed(0)
    unit = make({"type": method, "loss_weight": 1.0}, levels)
    torch.manual_seed(0)
    tripled = make({"type": method, "loss_weight": 3.0}, levels)

    losses = run_seeded(unit, student, teacher, boxes_batch())
    name = method.lower()
    expected_names = {
        "_".join(part for part in ("loss", name, key, lv) if part) for key in LOSS_KEYS[method] for lv in ("p3", "p4")
    }
    assert set(losses) == expected_names
    assert all(value.dim() == 0 for value in losses.values())

    sum(losses.values()).backward()
    for feature in student:
        assert feature.grad is not None and feature.grad.abs().sum() > 0

    scaled = run_seeded(tripled, student, teacher, boxes_batch())
    for key, value in losses.items():
        torch.testing.assert_close(scaled[key], 3 * value.detach(), rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("method", ["FGD", "MGD"])
def test_conv1x1_connector_is_trained(method: str) -> None:
    student = features(0, [(2, 3, 8, 8)], grad=True)
    teacher = features(1, [(2, 4, 8, 8)])
    distiller = make({"type": method, "connector": "conv1x1"}, [level(student_channels=3)])
    sum(distiller(student, teacher, boxes_batch()).values()).backward()
    assert distiller.connectors[0].proj.weight.grad.abs().sum() > 0
    assert student[0].grad.abs().sum() > 0


# ---------------------------------------------------------------- PKD


def pearson_per_channel(a: Tensor, b: Tensor) -> Tensor:
    """Pearson r of each channel, over all (N, H, W) values."""
    x = a.double().transpose(0, 1).flatten(1)
    y = b.double().transpose(0, 1).flatten(1)
    x, y = x - x.mean(dim=1, keepdim=True), y - y.mean(dim=1, keepdim=True)
    return (x * y).sum(dim=1) / (x.pow(2).sum(dim=1) * y.pow(2).sum(dim=1)).sqrt()


def test_pkd_is_weighted_one_minus_pearson() -> None:
    # mmrazor standardises with the unbiased std, so mean(F_hat^2) = (M - 1) / M for M values per channel.
    student = features(0, [(2, 3, 5, 5), (2, 3, 3, 3)])
    teacher = [0.5 * s + t for s, t in zip(student, features(1, [(2, 3, 5, 5), (2, 3, 3, 3)]), strict=True)]
    distiller = make({"type": "PKD"}, [level("p3", 0, 3, (5, 5)), level("p4", 1, 3, (3, 3))])
    assert distiller.loss_weight == 10.0
    losses = distiller(student, teacher, boxes_batch())
    for name, s, t in zip(("p3", "p4"), student, teacher, strict=True):
        m = s.numel() // s.shape[1]
        expected = 10 * (m - 1) / m * (1 - pearson_per_channel(s, t).mean())
        assert losses[f"loss_pkd_{name}"].item() == pytest.approx(expected.item(), rel=1e-4)


def test_pkd_ignores_per_channel_affine_change_of_student() -> None:
    student, teacher = features(2, [(2, 3, 6, 6), (2, 3, 6, 6)])
    scale = torch.tensor([0.1, 3.0, 25.0]).view(1, 3, 1, 1)
    shift = torch.tensor([-4.0, 0.5, 100.0]).view(1, 3, 1, 1)
    distiller = make({"type": "PKD"}, [level(channels=3, size=(6, 6))])
    before = distiller([student], [teacher], boxes_batch())["loss_pkd_p3"]
    after = distiller([student * scale + shift], [teacher], boxes_batch())["loss_pkd_p3"]
    assert before.item() > 1.0
    assert after.item() == pytest.approx(before.item(), rel=1e-4)


def test_pkd_resizes_student_to_teacher() -> None:
    student, teacher = features(3, [(2, 3, 4, 4), (2, 3, 8, 8)])
    distiller = make({"type": "PKD", "loss_weight": 1.0}, [level(channels=3, size=(8, 8), student_size=(4, 4))])
    loss = distiller([student], [teacher], boxes_batch())["loss_pkd_p3"]
    resized = F.interpolate(student, size=(8, 8), mode="bilinear", align_corners=False)
    m = 2 * 8 * 8
    expected = (m - 1) / m * (1 - pearson_per_channel(resized, teacher).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_pkd_refuses_channel_change_without_conv1x1() -> None:
    with pytest.raises(ValueError, match="conv1x1"):
        make({"type": "PKD"}, [level(channels=4, student_channels=3)])


# ---------------------------------------------------------------- CWD


def test_cwd_is_zero_for_identical_inputs() -> None:
    (feature,) = features(4, [(2, 4, 5, 5)])
    distiller = make({"type": "CWD", "tau": 2.0}, [level(size=(5, 5))])
    assert distiller.loss_weight == 10.0
    assert distiller([feature], [feature.clone()], boxes_batch())["loss_cwd_p3"].abs().item() < 1e-6


def test_cwd_matches_hand_computed_kl() -> None:
    tau, weight = 2.0, 10.0
    student, teacher = features(5, [(2, 2, 1, 3), (2, 2, 1, 3)])
    distiller = make({"type": "CWD", "tau": tau}, [level(channels=2, size=(1, 3))])
    loss = distiller([student], [teacher], boxes_batch())["loss_cwd_p3"]
    kl = 0.0
    for n in range(2):
        for c in range(2):
            p_s = softmax_list([v / tau for v in student[n, c].flatten().tolist()])
            p_t = softmax_list([v / tau for v in teacher[n, c].flatten().tolist()])
            kl += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s, strict=True))
    assert loss.item() == pytest.approx(weight * tau**2 * kl / (2 * 2), rel=1e-5)


# ---------------------------------------------------------------- MGD


def generate(block: nn.Sequential, x: Tensor) -> Tensor:
    """Conv3x3 -> ReLU -> Conv3x3 written out with the block's parameters."""
    hidden = F.relu(F.conv2d(x, block[0].weight, block[0].bias, padding=1))
    return F.conv2d(hidden, block[2].weight, block[2].bias, padding=1)


def fixed_mask(n: int, h: int, w: int) -> Tensor:
    return (torch.arange(n * h * w).reshape(n, 1, h, w) % 3 == 0).float()


def test_mgd_with_fixed_mask_matches_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    student, teacher = features(6, [(2, 4, 6, 6), (2, 4, 6, 6)])
    distiller = make({"type": "MGD"}, [level(size=(6, 6))])
    assert (distiller.alpha_mgd, distiller.lambda_mgd) == (2e-5, 0.65)
    mask = fixed_mask(2, 6, 6)
    monkeypatch.setattr(distiller, "random_mask", lambda shape, device=None, generator=None: mask)
    loss = distiller([student], [teacher], boxes_batch())["loss_mgd_p3"]
    with torch.no_grad():
        expected = 2e-5 * (teacher - generate(distiller.generation[0], student * mask)).pow(2).sum() / 2
        unmasked = 2e-5 * (teacher - generate(distiller.generation[0], student)).pow(2).sum() / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(loss.item() - unmasked.item()) > 1e-3 * unmasked.item()


def test_mgd_masks_lambda_of_positions_shared_across_channels() -> None:
    distiller = make({"type": "MGD", "lambda_mgd": 0.45}, [level()])
    mask = distiller.random_mask((16, 64, 64), generator=torch.Generator().manual_seed(0))
    assert mask.shape == (16, 1, 64, 64)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (mask == 0).float().mean().item() == pytest.approx(0.45, abs=0.01)
    default = make({"type": "MGD"}, [level()])
    draw = default.random_mask((16, 64, 64), generator=torch.Generator().manual_seed(1))
    assert (draw == 0).float().mean().item() == pytest.approx(0.65, abs=0.01)


def test_mgd_gradient_reaches_student_and_generation_block() -> None:
    student = features(7, [(2, 4, 6, 6)], grad=True)
    teacher = features(8, [(2, 4, 6, 6)])
    distiller = make({"type": "MGD"}, [level(size=(6, 6))])
    distiller(student, teacher, boxes_batch())["loss_mgd_p3"].backward()
    assert student[0].grad.abs().sum() > 0
    for conv in (distiller.generation[0][0], distiller.generation[0][2]):
        assert conv.weight.grad.abs().sum() > 0 and conv.bias.grad.abs().sum() > 0


def test_mgd_spatial_weight_multiplies_each_position(monkeypatch: pytest.MonkeyPatch) -> None:
    student, teacher = features(9, [(2, 4, 6, 6), (2, 4, 6, 6)])
    (weight,) = features(10, [(2, 6, 6)])
    weight = weight.abs()
    distiller = make({"type": "MGD", "spatial_weight": "rnd_novelty"}, [level(size=(6, 6))])
    mask = fixed_mask(2, 6, 6)
    monkeypatch.setattr(distiller, "random_mask", lambda shape, device=None, generator=None: mask)
    batch = boxes_batch()
    batch.maps["rnd_novelty"] = {"p3": weight}
    loss = distiller([student], [teacher], batch)["loss_mgd_p3"]
    with torch.no_grad():
        error = (teacher - generate(distiller.generation[0], student * mask)).pow(2)
    assert loss.item() == pytest.approx((2e-5 * (weight[:, None] * error).sum() / 2).item(), rel=1e-5)
    batch.maps["rnd_novelty"] = {"p3": torch.full((2, 6, 6), 2.0)}
    doubled = distiller([student], [teacher], batch)["loss_mgd_p3"]
    assert doubled.item() == pytest.approx((2 * 2e-5 * error.sum() / 2).item(), rel=1e-5)


def test_mgd_missing_spatial_weight_names_the_producer() -> None:
    student, teacher = features(11, [(2, 4, 6, 6), (2, 4, 6, 6)])
    distiller = make({"type": "MGD", "spatial_weight": "rnd_novelty"}, [level(size=(6, 6))])
    batch = boxes_batch()
    with pytest.raises(KeyError, match=r"RND.*before MGD in `distill`"):
        distiller([student], [teacher], batch)
    batch.maps["rnd_novelty"] = {"p4": torch.ones(2, 3, 3)}
    with pytest.raises(KeyError, match=r"\['rnd_novelty'\]\['p3'\]"):
        distiller([student], [teacher], batch)


# ---------------------------------------------------------------- FGD


def attention_lists(feature: Tensor, temp: float) -> tuple[list[list[list[float]]], list[list[float]]]:
    """Spatial ([n][h][w]) and channel ([n][c]) attentions written out element by element."""
    n_, c_, h_, w_ = feature.shape
    f = feature.tolist()
    spatial, channel = [], []
    for n in range(n_):
        means = [sum(abs(f[n][c][h][w]) for c in range(c_)) / c_ for h in range(h_) for w in range(w_)]
        probs = softmax_list([m / temp for m in means])
        spatial.append([[h_ * w_ * probs[h * w_ + w] for w in range(w_)] for h in range(h_)])
        cmeans = [sum(abs(f[n][c][h][w]) for h in range(h_) for w in range(w_)) / (h_ * w_) for c in range(c_)]
        channel.append([c_ * p for p in softmax_list([m / temp for m in cmeans])])
    return spatial, channel


def mask_lists(batch: DistillBatch, h_: int, w_: int) -> tuple[list, list]:
    """FGD's masks written out box by box and cell by cell."""
    fg_all, bg_all = [], []
    in_h, in_w = batch.input_shape
    for boxes in batch.gt_bboxes:
        fg = [[0.0] * w_ for _ in range(h_)]
        for x1, y1, x2, y2 in boxes.tolist():
            c1, c2 = math.floor(x1 * w_ / in_w), math.ceil(x2 * w_ / in_w)
            r1, r2 = math.floor(y1 * h_ / in_h), math.ceil(y2 * h_ / in_h)
            area = (c2 - c1 + 1) * (r2 - r1 + 1)
            for r in range(r1, min(r2, h_ - 1) + 1):
                for c in range(c1, min(c2, w_ - 1) + 1):
                    fg[r][c] = max(fg[r][c], 1 / area)
        count = sum(v == 0 for row in fg for v in row)
        bg_all.append([[(1 / count if v == 0 else 0.0) for v in row] for row in fg])
        fg_all.append(fg)
    return fg_all, bg_all


def gc_block_lists(block: nn.Module, feature: Tensor) -> list:
    """FGD's GcBlock written out: context pooling, 1x1 conv, LayerNorm, ReLU, 1x1 conv, broadcast add."""
    n_, c_, h_, w_ = feature.shape
    f = feature.tolist()
    wk, bk = block.context_mask.weight.flatten().tolist(), block.context_mask.bias.item()
    conv1, norm, conv2 = block.channel_add[0], block.channel_add[1], block.channel_add[3]
    w1, b1 = conv1.weight.flatten(1).tolist(), conv1.bias.tolist()
    g, b = norm.weight.flatten().tolist(), norm.bias.flatten().tolist()
    w2, b2 = conv2.weight.flatten(1).tolist(), conv2.bias.tolist()
    out = []
    for n in range(n_):
        positions = [(h, w) for h in range(h_) for w in range(w_)]
        probs = softmax_list([sum(wk[c] * f[n][c][h][w] for c in range(c_)) + bk for h, w in positions])
        context = [sum(p * f[n][c][h][w] for p, (h, w) in zip(probs, positions, strict=True)) for c in range(c_)]
        hidden = [sum(w1[k][c] * context[c] for c in range(c_)) + b1[k] for k in range(len(b1))]
        mean = sum(hidden) / len(hidden)
        var = sum((v - mean) ** 2 for v in hidden) / len(hidden)
        hidden = [max(0.0, (v - mean) / math.sqrt(var + 1e-5) * g[k] + b[k]) for k, v in enumerate(hidden)]
        add = [sum(w2[c][k] * hidden[k] for k in range(len(hidden))) + b2[c] for c in range(c_)]
        out.append([[[f[n][c][h][w] + add[c] for w in range(w_)] for h in range(h_)] for c in range(c_)])
    return out


def test_fgd_losses_match_direct_computation() -> None:
    temp = 0.5
    student, teacher = features(12, [(3, 4, 4, 4), (3, 4, 4, 4)])
    batch = boxes_batch(3)
    torch.manual_seed(0)
    distiller = make({"type": "FGD"}, [level(size=(4, 4))])
    with torch.no_grad():  # leave the zero init so the relation term is not trivial
        for block in (distiller.student_context[0], distiller.teacher_context[0]):
            for param in block.channel_add.parameters():
                param.normal_(0, 0.5)
    losses = distiller([student], [teacher], batch)

    n_, c_, h_, w_ = student.shape
    s, t = student.tolist(), teacher.tolist()
    spatial_t, channel_t = attention_lists(teacher, temp)
    spatial_s, channel_s = attention_lists(student, temp)
    fg, bg = mask_lists(batch, h_, w_)
    cells = [(n, c, h, w) for n in range(n_) for c in range(c_) for h in range(h_) for w in range(w_)]

    def focal(mask: list) -> float:
        return sum(
            mask[n][h][w] * spatial_t[n][h][w] * channel_t[n][c] * (t[n][c][h][w] - s[n][c][h][w]) ** 2
            for n, c, h, w in cells
        ) / n_

    at = sum(abs(channel_s[n][c] - channel_t[n][c]) for n in range(n_) for c in range(c_)) / n_
    at += sum(abs(spatial_s[n][h][w] - spatial_t[n][h][w]) for n, c, h, w in cells if c == 0) / n_
    with torch.no_grad():
        rs = gc_block_lists(distiller.student_context[0], student)
        rt = gc_block_lists(distiller.teacher_context[0], teacher)
    rela = sum((rs[n][c][h][w] - rt[n][c][h][w]) ** 2 for n, c, h, w in cells) / n_

    assert sum(fg[2][h][w] for h in range(h_) for w in range(w_)) == 0  # image 2 has no boxes
    assert losses["loss_fgd_fg_p3"].item() == pytest.approx(1e-3 * focal(fg), rel=1e-5)
    assert losses["loss_fgd_bg_p3"].item() == pytest.approx(5e-4 * focal(bg), rel=1e-5)
    assert losses["loss_fgd_at_p3"].item() == pytest.approx(5e-4 * at, rel=1e-5)
    assert losses["loss_fgd_rela_p3"].item() == pytest.approx(5e-6 * rela, rel=1e-4)


def test_fgd_is_zero_for_identical_features_at_init() -> None:
    (feature,) = features(13, [(2, 4, 8, 8)])
    distiller = make({"type": "FGD"}, [level()])
    losses = distiller([feature], [feature.clone()], boxes_batch())
    assert set(losses) == {"loss_fgd_fg_p3", "loss_fgd_bg_p3", "loss_fgd_at_p3", "loss_fgd_rela_p3"}
    for value in losses.values():
        assert value.abs().item() < 1e-9


def test_fgd_relation_blocks_start_as_identity_and_train() -> None:
    student = features(14, [(2, 4, 8, 8)], grad=True)
    teacher = features(15, [(2, 4, 8, 8)])
    distiller = make({"type": "FGD"}, [level()])
    block = distiller.teacher_context[0]
    torch.testing.assert_close(block(teacher[0]), teacher[0])
    distiller(student, teacher, boxes_batch())["loss_fgd_rela_p3"].backward()
    for side in (distiller.student_context[0], distiller.teacher_context[0]):
        assert side.channel_add[-1].weight.grad.abs().sum() > 0
