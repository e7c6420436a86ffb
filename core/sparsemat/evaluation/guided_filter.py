"""Guided-filter upsampling baseline (He, Sun, Tang, "Guided Image Filtering", TPAMI 2013; He & Sun, "Fast
Guided Filter", 2015).

:func:`guided_upsample` turns a low-resolution alpha into a full-resolution one using the full-resolution
plate as guide: the colour guided filter's linear coefficients ``(A, b)`` are solved at low resolution
against the downsampled plate, box-averaged, bilinearly upsampled and applied to the full-resolution plate
(``q = A · I + b``), computed in float64 here (the engine's copy of the same filter runs in float32).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sparsemat.engine.guided import box_filter, guided_coefficients, guided_dense

__all__ = ["box_filter", "bilinear_upsample", "guided_filter", "guided_upsample"]


def _as_guide(rgb: np.ndarray) -> torch.Tensor:
    g = np.asarray(rgb, dtype=np.float32)
    if g.ndim == 2:
        g = g[..., None]
    return torch.from_numpy(np.ascontiguousarray(g)).permute(2, 0, 1)[None]


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3) -> np.ndarray:
    """Plain (same-resolution) colour guided filter.

    Args:
        guide: ``[H, W, 3]`` (or ``[H, W]``) float32 display sRGB in [0, 1].
        src: ``[H, W]`` float in [0, 1] (the alpha to filter).
        radius: window radius in pixels; eps: regularisation (on guide variance, [0, 1]² units).

    Returns:
        ``[H, W]`` float32 (not clipped).
    """
    g = _as_guide(guide).double()
    p = torch.from_numpy(np.asarray(src, dtype=np.float64))[None, None]
    a, b = guided_coefficients(g, p, radius, eps, torch.float64)
    return ((a * g).sum(dim=1) + b[:, 0])[0].float().numpy()


def guided_upsample(lr_alpha: np.ndarray, hr_rgb: np.ndarray, radius: int = 1, eps: float = 1e-4,
                    clip: bool = True) -> np.ndarray:
    """Fast guided-filter upsampling of a low-resolution alpha.

    Args:
        lr_alpha: ``[h, w]`` float in [0, 1], e.g. a prior network's output at 512 px.
        hr_rgb: ``[H, W, 3]`` float32 display sRGB in [0, 1] (the guide), ``H >= h``, ``W >= w``.
        radius: box radius in low-resolution pixels (the full-resolution window is ``radius * H / h``).
        eps: regularisation; smaller follows the guide's edges more closely, larger approaches bilinear.
        clip: clamp the result to [0, 1].

    Returns:
        ``[H, W]`` float32 alpha.
    """
    lr = np.asarray(lr_alpha, dtype=np.float64)
    h, w = lr.shape
    guide_hr = _as_guide(hr_rgb)
    hh, ww = guide_hr.shape[-2:]
    if (h, w) == (hh, ww):
        out = guided_filter(hr_rgb, lr, radius, eps)
        return np.clip(out, 0.0, 1.0) if clip else out
    guide_lr = F.interpolate(guide_hr, size=(h, w), mode="bilinear", align_corners=False, antialias=True).double()
    q = guided_dense(guide_lr, torch.from_numpy(lr)[None, None], guide_hr, radius, eps, clip, torch.float64)
    return q[0, 0].numpy()


def bilinear_upsample(lr_alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The plain baseline: bilinear (``align_corners=False``) upsampling of ``[h, w]`` to ``size = (H, W)``."""
    t = torch.from_numpy(np.asarray(lr_alpha, dtype=np.float32))[None, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
