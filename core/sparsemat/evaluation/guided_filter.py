"""Guided-filter upsampling baseline (He, Sun, Tang, "Guided Image Filtering", TPAMI 2013; He & Sun, "Fast
Guided Filter", 2015).

:func:`guided_upsample` turns a low-resolution alpha into a full-resolution one using the full-resolution
plate as guide: the colour guided filter's linear coefficients ``(A, b)`` are solved at low resolution
against the downsampled plate, box-averaged, bilinearly upsampled and applied to the full-resolution plate
(``q = A · I + b``). Box filters are O(1) per pixel (cumulative sums), so 4K runs in about a second on CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the ``(2r+1)²`` window clipped to the image (border windows average fewer pixels).

    ``x``: ``[B, C, H, W]`` float tensor; returns the same shape and dtype. Uses cumulative sums.
    """
    if r <= 0:
        return x
    h, w = x.shape[-2:]

    def along(t: torch.Tensor, dim: int, n: int) -> torch.Tensor:
        c = torch.cumsum(t, dim=dim)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)  # c[i] = sum t[:i]
        idx = torch.arange(n, device=t.device)
        hi = (idx + r + 1).clamp(max=n)
        lo = (idx - r).clamp(min=0)
        return c.index_select(dim, hi) - c.index_select(dim, lo)

    s = along(along(x, -2, h), -1, w)
    ones = torch.ones((1, 1, h, w), dtype=x.dtype, device=x.device)
    n = along(along(ones, -2, h), -1, w)
    return s / n


def _coefficients(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour guided-filter coefficients. ``guide`` [1, 3, h, w], ``src`` [1, 1, h, w] (float64).

    Returns box-averaged ``A`` [1, 3, h, w] and ``b`` [1, 1, h, w].
    """
    mean_i = box_filter(guide, r)
    mean_p = box_filter(src, r)
    cov_ip = box_filter(guide * src, r) - mean_i * mean_p  # [1, 3, h, w]
    c = guide.shape[1]
    prods = torch.stack([guide[:, i] * guide[:, j] for i in range(c) for j in range(c)], dim=1)
    var = box_filter(prods, r) - torch.stack(
        [mean_i[:, i] * mean_i[:, j] for i in range(c) for j in range(c)], dim=1)
    h, w = guide.shape[-2:]
    sigma = var[0].permute(1, 2, 0).reshape(h * w, c, c) + eps * torch.eye(c, dtype=guide.dtype)
    rhs = cov_ip[0].permute(1, 2, 0).reshape(h * w, c, 1)
    a = torch.linalg.solve(sigma, rhs).reshape(h, w, c).permute(2, 0, 1)[None]  # [1, 3, h, w]
    b = mean_p - (a * mean_i).sum(dim=1, keepdim=True)
    return box_filter(a, r), box_filter(b, r)


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
    a, b = _coefficients(g, p, radius, eps)
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
    a, b = _coefficients(guide_lr, torch.from_numpy(lr)[None, None], radius, eps)
    a_hr = F.interpolate(a.float(), size=(hh, ww), mode="bilinear", align_corners=False)
    b_hr = F.interpolate(b.float(), size=(hh, ww), mode="bilinear", align_corners=False)
    q = torch.addcmul(b_hr[:, 0], a_hr[:, 0], guide_hr[:, 0])
    for c in range(1, guide_hr.shape[1]):
        q.addcmul_(a_hr[:, c], guide_hr[:, c])
    out = q[0].numpy()
    return np.clip(out, 0.0, 1.0) if clip else out.astype(np.float32)


def bilinear_upsample(lr_alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The plain baseline: bilinear (``align_corners=False``) upsampling of ``[h, w]`` to ``size = (H, W)``."""
    t = torch.from_numpy(np.asarray(lr_alpha, dtype=np.float32))[None, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
