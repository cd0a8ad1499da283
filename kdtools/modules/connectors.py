"""Connectors align a student feature with its teacher feature, and the MGD generation block.

A connector is owned by a distiller, trained by the student's optimizer, and never exported.

    'conv1x1'  1x1 conv C_s -> C_t, then bilinear resize when H, W differ
    'resize'   bilinear resize to the teacher's H, W (channels must already match)
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

CONNECTORS = ("conv1x1", "resize")


class Connector(nn.Module):
    """Align an N x C_s x H_s x W_s student feature to the teacher's C_t x H_t x W_t."""

    def __init__(self, kind: str, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if kind not in CONNECTORS:
            raise ValueError(f"Unknown connector {kind!r}; use one of {CONNECTORS} or None.")
        if kind == "resize" and in_channels != out_channels:
            raise ValueError(
                f"connector='resize' cannot change channels ({in_channels} -> {out_channels}); use connector='conv1x1'."
            )
        self.kind = kind
        self.proj = nn.Conv2d(in_channels, out_channels, 1) if kind == "conv1x1" else nn.Identity()

    def forward(self, student: Tensor, teacher_size: tuple[int, int]) -> Tensor:
        aligned = self.proj(student)
        if tuple(aligned.shape[-2:]) != tuple(teacher_size):
            aligned = F.interpolate(aligned, size=teacher_size, mode="bilinear", align_corners=False)
        return aligned


def generation_block(channels: int) -> nn.Sequential:
    """MGD's generator: Conv3x3 -> ReLU -> Conv3x3 on C_t channels. Training-only."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 3, padding=1),
    )
