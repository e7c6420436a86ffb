"""Edge-aware upsampling of a low-resolution prior: the fast guided filter (He & Sun 2015).

The colour guided filter's linear model ``α ≈ A · I + b`` is solved at the prior's resolution against the
downsampled plate (``A``, ``b`` box-averaged), then ``A`` and ``b`` are upsampled bilinearly and applied to the
full-resolution plate. Two consumers:

* the ``guided`` baseline of the validation yardstick (:mod:`sparsemat.evaluation.guided_filter`, dense);
* SHM variants with ``SHMConfig.guided_prior``: their prior input (and residual base) at each active site is
  this upsampling instead of the bilinear ``α↑``. The engine evaluates it only at the active sites
  (:func:`guided_at_sites`), the trainer densely on crops (:func:`guided_dense`); both give the same values.

Box filters are separable average pools; the 3×3 systems are solved in closed form (float32 in the engine:
0.14 s for a 4K plate's 512×910 prior on one core).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sparsemat.engine.resize import upsample_at

GUIDED_RADIUS = 1
"""Box radius in low-resolution pixels of the prior's guided upsampling."""
GUIDED_EPS = 1e-4
"""Regularisation (guide variance units, sRGB [0, 1]²)."""


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the ``(2r+1)²`` window clipped to the image (border windows average fewer pixels).

    ``x``: ``[B, C, H, W]`` float tensor; returns the same shape and dtype. Separable average pooling
    (the clipped-window mean is separable), exact in float32 unlike running sums.
    """
    if r <= 0:
        return x
    k = 2 * r + 1
    x = F.avg_pool2d(x, (k, 1), 1, (r, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, k), 1, (0, r), count_include_pad=False)


_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def wants_guided_prior(refiner: object) -> bool:
    """True when ``refiner`` (an SHM) takes the guided upsampling as its prior input (``cfg.guided_prior``)."""
    return bool(getattr(getattr(refiner, "cfg", None), "guided_prior", False))


def guided_coefficients(guide: torch.Tensor, src: torch.Tensor, radius: int = GUIDED_RADIUS,
                        eps: float = GUIDED_EPS, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-averaged colour guided-filter coefficients.

    Args:
        guide: ``[B, C, h, w]`` float, C = 3 (display sRGB in [0, 1]) or C = 1.
        src: ``[B, 1, h, w]`` float, the alpha to filter, in [0, 1].
        radius: box radius in pixels; eps: regularisation.
        dtype: compute precision (float32 for the engine; float64 for the evaluation baseline).

    Returns:
        ``(A [B, C, h, w], b [B, 1, h, w])`` in ``dtype``, so that ``A · guide + b`` is the filtered ``src``.
    """
    g = guide.to(dtype)
    p = src.to(dtype)
    mean_i = box_filter(g, radius)
    mean_p = box_filter(p, radius)
    cov = box_filter(g * p, radius) - mean_i * mean_p  # [B, C, h, w]
    if g.shape[1] == 1:
        a = cov / (box_filter(g * g, radius) - mean_i * mean_i + eps)
    else:  # 3×3 symmetric systems, solved in closed form (adjugate / determinant)
        var = box_filter(torch.stack([g[:, i] * g[:, j] for i, j in _PAIRS], 1), radius)
        var = var - torch.stack([mean_i[:, i] * mean_i[:, j] for i, j in _PAIRS], 1)
        s00, s01, s02, s11, s12, s22 = var.unbind(1)
        s00, s11, s22 = s00 + eps, s11 + eps, s22 + eps
        c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
        c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
        det = s00 * c00 + s01 * c01 + s02 * c02
        v0, v1, v2 = cov.unbind(1)
        a = torch.stack([c00 * v0 + c01 * v1 + c02 * v2, c01 * v0 + c11 * v1 + c12 * v2,
                         c02 * v0 + c12 * v1 + c22 * v2], 1) / det[:, None]
    b = mean_p - (a * mean_i).sum(dim=1, keepdim=True)
    return box_filter(a, radius), box_filter(b, radius)


def guided_dense(lr_rgb: torch.Tensor, lr_alpha: torch.Tensor, rgb: torch.Tensor, radius: int = GUIDED_RADIUS,
                 eps: float = GUIDED_EPS, clip: bool = True, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Guided upsampling of a low-res alpha to the size of ``rgb`` (every pixel).

    Args:
        lr_rgb: ``[B, C, h, w]`` float display sRGB in [0, 1], the plate at the prior's resolution.
        lr_alpha: ``[B, 1, h, w]`` float alpha in [0, 1].
        rgb: ``[B, C, H, W]`` float32 display sRGB in [0, 1], the full-resolution guide.
        clip: clamp to [0, 1].
        dtype: precision of the coefficient solve (the upsampling and the result are float32).

    Returns:
        ``[B, 1, H, W]`` float32.
    """
    size = (int(rgb.shape[-2]), int(rgb.shape[-1]))
    a, b = guided_coefficients(lr_rgb, lr_alpha, radius, eps, dtype)
    a, b = a.float(), b.float()
    if tuple(a.shape[-2:]) != size:
        a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=size, mode="bilinear", align_corners=False)
    guide = rgb.float()
    q = b[:, 0].clone()  # one plane at a time: no [B, C, H, W] product at full resolution
    for c in range(guide.shape[1]):
        q.addcmul_(a[:, c], guide[:, c])
    q = q[:, None]
    return q.clamp(0.0, 1.0) if clip else q


def guided_at_sites(coeffs: tuple[torch.Tensor, torch.Tensor], rgb: torch.Tensor, coords: torch.Tensor,
                    size: tuple[int, int], clip: bool = True) -> torch.Tensor:
    """Guided upsampling evaluated only at some full-resolution pixels (equals :func:`guided_dense` there).

    Args:
        coeffs: ``(A [1, 3, h, w], b [1, 1, h, w])`` from :func:`guided_coefficients`.
        rgb: ``[N, 3]`` float display sRGB in [0, 1], the plate at those pixels.
        coords: ``[N, 2]`` integer ``(y, x)`` pixel coordinates in an image of ``size = (H, W)``.
        clip: clamp to [0, 1].

    Returns:
        ``[N]`` float32.
    """
    a, b = coeffs
    if coords.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float32, device=rgb.device)
    vals = upsample_at(torch.cat([a, b], dim=1), coords, size)  # [4, N]
    q = (vals[:3].t() * rgb.float()).sum(dim=1) + vals[3]
    return q.clamp(0.0, 1.0) if clip else q
