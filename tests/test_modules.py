"""Shared pieces: attention maps, GT masks, connectors, the generation block and the alignment checks."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kdtools.distillers.base import BaseDistiller, DistillBatch, LevelPair
from kdtools.modules import Connector, box_indicator, channel_attention, generation_block, spatial_attention


def softmax_list(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


# ---------------------------------------------------------------- attention


def test_spatial_attention_matches_formula_and_sums_to_hw() -> None:
    torch.manual_seed(0)
    feature = torch.randn(2, 3, 4, 5)
    temp = 0.5
    attention = spatial_attention(feature, temp)
    assert attention.shape == (2, 4, 5)
    torch.testing.assert_close(attention.sum(dim=(1, 2)), torch.full((2,), 20.0))
    for n in range(2):
        means = [sum(abs(feature[n, c, h, w].item()) for c in range(3)) / 3 for h in range(4) for w in range(5)]
        expected = [20 * p for p in softmax_list([m / temp for m in means])]
        torch.testing.assert_close(attention[n].flatten(), torch.tensor(expected))


def test_channel_attention_matches_formula_and_sums_to_c() -> None:
    torch.manual_seed(1)
    feature = torch.randn(2, 3, 4, 5)
    temp = 0.8
    attention = channel_attention(feature, temp)
    assert attention.shape == (2, 3)
    torch.testing.assert_close(attention.sum(dim=1), torch.full((2,), 3.0))
    for n in range(2):
        means = [feature[n, c].abs().sum().item() / 20 for c in range(3)]
        expected = [3 * p for p in softmax_list([m / temp for m in means])]
        torch.testing.assert_close(attention[n], torch.tensor(expected))


def test_uniform_feature_gives_unit_attention() -> None:
    feature = torch.ones(1, 4, 3, 3)
    torch.testing.assert_close(spatial_attention(feature, 0.5), torch.ones(1, 3, 3))
    torch.testing.assert_close(channel_attention(feature, 0.5), torch.ones(1, 4))


# ---------------------------------------------------------------- GT masks


def test_foreground_smallest_box_wins_and_background_normalised() -> None:
    # 32 x 32 input, 8 x 8 feature: stride 4.
    big = [0.0, 0.0, 12.0, 12.0]  # cells 0..3 x 0..3: 16 cells
    small = [4.0, 4.0, 8.0, 8.0]  # cells 1..2 x 1..2: 4 cells, inside the big one
    odd = [21.0, 26.0, 29.0, 29.0]  # x 5.25..7.25 -> 5..8, y 6.5..7.25 -> 6..8: area 4 * 3 = 12, clipped on the map
    batch = DistillBatch([torch.tensor([big, small, odd]), torch.zeros(0, 4)], [(32, 32), (32, 32)], (32, 32))
    fg, bg = batch.foreground((8, 8)), batch.background((8, 8))

    expected = torch.zeros(8, 8)
    expected[0:4, 0:4] = 1 / 16
    expected[1:3, 1:3] = 1 / 4
    expected[6:8, 5:8] = 1 / 12
    torch.testing.assert_close(fg[0], expected)
    outside = (expected == 0).float()
    torch.testing.assert_close(bg[0], outside / outside.sum())
    assert bg[0].sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(bg[0][1, 1], torch.tensor(0.0))

    torch.testing.assert_close(fg[1], torch.zeros(8, 8))
    torch.testing.assert_close(bg[1], torch.full((8, 8), 1 / 64))
    torch.testing.assert_close(batch.inside_boxes((8, 8))[0], 1 - outside)


def test_foreground_keeps_x_and_y_apart() -> None:
    # 32 x 64 (H x W) input, 4 x 8 feature: stride 8 both ways.
    boxes = [torch.tensor([[40.0, 0.0, 56.0, 8.0]])]  # x 5..7, y 0..1: 6 cells
    batch = DistillBatch(boxes, [(32, 64)], (32, 64))
    expected = torch.zeros(1, 4, 8)
    expected[0, 0:2, 5:8] = 1 / 6
    torch.testing.assert_close(batch.foreground((4, 8)), expected)
    torch.testing.assert_close(box_indicator(boxes, (32, 64), (4, 8)), (expected > 0).float())


def test_background_is_zero_when_boxes_cover_everything() -> None:
    batch = DistillBatch([torch.tensor([[0.0, 0.0, 16.0, 16.0]])], [(16, 16)], (16, 16))
    assert batch.background((4, 4)).abs().sum().item() == 0.0


# ---------------------------------------------------------------- connectors and generation block


def test_conv1x1_connector_changes_channels_and_resizes() -> None:
    torch.manual_seed(2)
    connector = Connector("conv1x1", 3, 5)
    student = torch.randn(2, 3, 4, 4)
    projected = F.conv2d(student, connector.proj.weight, connector.proj.bias)
    torch.testing.assert_close(connector(student, (4, 4)), projected)
    resized = F.interpolate(projected, size=(8, 6), mode="bilinear", align_corners=False)
    torch.testing.assert_close(connector(student, (8, 6)), resized)


def test_resize_connector_resizes_only() -> None:
    student = torch.arange(16.0).reshape(1, 1, 4, 4)
    connector = Connector("resize", 1, 1)
    assert connector(student, (4, 4)) is student
    out = connector(student, (2, 2))
    torch.testing.assert_close(out, F.interpolate(student, size=(2, 2), mode="bilinear", align_corners=False))
    # Bilinear halving of a linear ramp averages each 2 x 2 block.
    torch.testing.assert_close(out, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))


def test_resize_connector_refuses_channel_change() -> None:
    with pytest.raises(ValueError, match="conv1x1"):
        Connector("resize", 3, 5)
    with pytest.raises(ValueError, match="Unknown connector"):
        Connector("linear", 3, 5)


def test_generation_block_is_conv_relu_conv() -> None:
    torch.manual_seed(3)
    block = generation_block(4)
    x = torch.randn(2, 4, 5, 5)
    first, second = block[0], block[2]
    expected = F.conv2d(F.relu(F.conv2d(x, first.weight, first.bias, padding=1)), second.weight, second.bias, padding=1)
    torch.testing.assert_close(block(x), expected)


# ---------------------------------------------------------------- BaseDistiller.setup checks


def pair(student_channels: int, teacher_channels: int, student_size: tuple[int, int]) -> LevelPair:
    return LevelPair("p3", 0, 0, student_channels, teacher_channels, student_size, (8, 8))


def test_setup_names_conv1x1_when_channels_differ() -> None:
    with pytest.raises(ValueError, match="connector='conv1x1'"):
        BaseDistiller().setup([pair(3, 5, (8, 8))])
    with pytest.raises(ValueError, match="connector='conv1x1'"):
        BaseDistiller(connector="resize").setup([pair(3, 5, (8, 8))])


def test_setup_names_resize_when_sizes_differ() -> None:
    with pytest.raises(ValueError, match="connector='resize'"):
        BaseDistiller().setup([pair(4, 4, (4, 4))])


def test_setup_builds_one_connector_per_level() -> None:
    distiller = BaseDistiller(connector="conv1x1")
    distiller.setup([pair(3, 5, (4, 4)), LevelPair("p4", 1, 1, 3, 5, (2, 2), (4, 4))])
    assert len(distiller.connectors) == 2
    student = [torch.randn(1, 3, 4, 4), torch.randn(1, 3, 2, 2)]
    teacher = [torch.randn(1, 5, 8, 8), torch.randn(1, 5, 4, 4)]
    shapes = [tuple(s.shape) for s, _ in distiller.aligned_levels(student, teacher)]
    assert shapes == [(1, 5, 8, 8), (1, 5, 4, 4)]
