"""Resampling helpers shared by the engine stages (torch, any device)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def downsample(chw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of ``[B, C, H, W]`` float to ``size`` (used for shrinking)."""
    if tuple(chw.shape[-2:]) == tuple(size):
        return chw
    return F.interpolate(chw.float(), size=size, mode="bilinear", align_corners=False, antialias=True)


def upsample(chw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``[B, C, h, w]`` to ``size`` (align_corners=False, as the official code)."""
    if tuple(chw.shape[-2:]) == tuple(size):
        return chw
    return F.interpolate(chw.float(), size=size, mode="bilinear", align_corners=False)


def resize_plane(plane: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize an ``[H, W]`` plane: antialiased when shrinking, bilinear when enlarging."""
    grow = size[0] >= plane.shape[0] and size[1] >= plane.shape[1]
    fn = upsample if grow else downsample
    return fn(plane[None, None], size)[0, 0]
