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


def upsample_at(maps: torch.Tensor, coords: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`upsample` of ``maps`` to ``size``, evaluated only at some pixels.

    Args:
        maps: ``[1, C, h, w]`` float.
        coords: ``[N, 2]`` integer ``(y, x)`` pixel coordinates in an image of ``size = (H, W)``.

    Returns:
        ``[C, N]`` float32, equal to ``upsample(maps, size)[0, :, y, x]`` (bilinear, align_corners=False, edge
        values clamped).
    """
    height, width = size
    gx = (coords[:, 1].float() + 0.5) * (2.0 / width) - 1.0
    gy = (coords[:, 0].float() + 0.5) * (2.0 / height) - 1.0
    grid = torch.stack([gx, gy], dim=1)[None, None]  # [1, 1, N, 2]
    out = F.grid_sample(maps.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0]
