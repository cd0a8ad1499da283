"""Foreground/background masks from ground-truth boxes, vectorised over images and boxes.

A box (x1, y1, x2, y2) in input pixels maps to feature cells floor(x1 / s_x) .. ceil(x2 / s_x) inclusive
(likewise for y), with s the input-to-feature stride. A cell inside boxes gets max over those boxes of
1 / area_in_cells, so the smallest box wins (FGD's rule). The background mask is 1 where no box lies,
divided by its count per image; an image without boxes is all background.

kdtools measures the stride against the padded batch input, which keeps boxes where they are when images
of different sizes share a batch (FGD's code divides by each image's own size, which shifts boxes of the
smaller images of such a batch).
"""
from __future__ import annotations

import torch
from torch import Tensor


def pad_boxes(boxes: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack per-image (K_i x 4) boxes into N x K_max x 4 with a validity mask N x K_max."""
    n = len(boxes)
    k_max = max((b.shape[0] for b in boxes), default=0)
    device = boxes[0].device if boxes else torch.device("cpu")
    padded = torch.zeros(n, k_max, 4, device=device)
    valid = torch.zeros(n, k_max, dtype=torch.bool, device=device)
    for i, b in enumerate(boxes):
        padded[i, : b.shape[0]] = b.float()
        valid[i, : b.shape[0]] = True
    return padded, valid


def box_cell_ranges(boxes: Tensor, input_shape: tuple[int, int], feature_shape: tuple[int, int]) -> Tensor:
    """Inclusive integer cell ranges (x1, y1, x2, y2) of boxes (... x 4, input pixels) on a feature map."""
    (in_h, in_w), (h, w) = input_shape, feature_shape
    scale = boxes.new_tensor([w / in_w, h / in_h, w / in_w, h / in_h])
    scaled = boxes * scale
    return torch.cat([scaled[..., :2].floor(), scaled[..., 2:].ceil()], dim=-1)


def foreground_mask(
    boxes: list[Tensor], input_shape: tuple[int, int], feature_shape: tuple[int, int]
) -> Tensor:
    """N x H x W mask: in each cell the inverse cell-area of the smallest box covering it, else 0."""
    padded, valid = pad_boxes(boxes)
    h, w = feature_shape
    if padded.shape[1] == 0:
        return padded.new_zeros(len(boxes), h, w)
    cells = box_cell_ranges(padded, input_shape, feature_shape)  # N x K x 4
    x1, y1, x2, y2 = cells.unbind(-1)
    ys = torch.arange(h, device=padded.device, dtype=padded.dtype)
    xs = torch.arange(w, device=padded.device, dtype=padded.dtype)
    in_y = (ys[None, None] >= y1[..., None]) & (ys[None, None] <= y2[..., None])  # N x K x H
    in_x = (xs[None, None] >= x1[..., None]) & (xs[None, None] <= x2[..., None])  # N x K x W
    area = (x2 - x1 + 1) * (y2 - y1 + 1)  # N x K, FGD's count (a range may reach one cell past the edge)
    inverse_area = torch.where(valid, 1.0 / area, torch.zeros_like(area))
    inside = in_y[..., :, None] & in_x[..., None, :]  # N x K x H x W
    return (inside * inverse_area[..., None, None]).amax(dim=1)


def background_mask(fg_mask: Tensor) -> Tensor:
    """1 where no box lies, normalised to sum 1 per image (all zero if boxes cover everything)."""
    bg = (fg_mask == 0).to(fg_mask.dtype)
    return bg / bg.sum(dim=(1, 2), keepdim=True).clamp(min=1)


def box_indicator(boxes: list[Tensor], input_shape: tuple[int, int], feature_shape: tuple[int, int]) -> Tensor:
    """N x H x W: 1 inside any box, 0 elsewhere."""
    return (foreground_mask(boxes, input_shape, feature_shape) > 0).float()
