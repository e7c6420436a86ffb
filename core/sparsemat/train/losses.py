"""Training losses of SparseMat (shared/notes/method.md §6), written for the masked-dense layout.

Every tensor is ``[B, C, H, W]`` float32; alphas are in [0, 1]; masks are ``[B, 1, H, W]`` float in {0, 1}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sparsemat.engine.guided import box_filter
from sparsemat.evaluation.metrics import gauss_derivative_kernels

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0

LOSS_NORMS: tuple[str, ...] = ("l1", "l2")
"""Penalties of the SHM's alpha terms (``TrainConfig.loss_norm``): ``l1`` charges ``|e|`` (Charbonnier for the
alpha itself), whose minimiser under an uncertain target is its median; ``l2`` charges ``e²``, whose minimiser is its
mean — where the inputs leave an edge's position or width open, the median of the possible mattes is a hard step and
the mean a soft ramp."""


def penalty(diff: Tensor, norm: str = "l1") -> Tensor:
    """Elementwise ``|diff|`` (``l1``) or ``diff²`` (``l2``), see :data:`LOSS_NORMS`."""
    if norm == "l1":
        return diff.abs()
    if norm == "l2":
        return diff * diff
    raise ValueError(f"unknown loss norm {norm!r}; choose one of {', '.join(LOSS_NORMS)}")


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """``Σ mask·values / (Σ mask + 1)``, the official normalisation of every masked term."""
    return (values * mask).sum() / (mask.sum() + 1.0)


def alpha_loss(pred: Tensor, gt: Tensor, mask: Tensor, norm: str = "l1") -> Tensor:
    """The per-site alpha term: :func:`charbonnier` (``l1``) or the masked squared error
    ``Σ mask·(p − g)² / (Σ mask + 1)`` (``l2``), with the same normalisation.

    Args:
        pred, gt: ``[B, 1, H, W]`` alpha in [0, 1].
        mask: ``[B, 1, H, W]`` float in {0, 1}, the active sites (or a per-item weight broadcast to them).
        norm: one of :data:`LOSS_NORMS`.

    Returns:
        0-d float32 tensor.
    """
    if norm == "l1":
        return charbonnier(pred, gt, mask)
    return _masked_mean(penalty(pred - gt, norm), mask)


def charbonnier(pred: Tensor, gt: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """Masked Charbonnier ``Σ mask·sqrt((p − g)² + eps) / (Σ mask + 1)`` (the official normalisation).

    Args:
        pred, gt: ``[B, 1, H, W]`` alpha in [0, 1].
        mask: ``[B, 1, H, W]`` float in {0, 1}, the active sites.
        eps: smoothing (the official 1e-10 makes the gradient a sign function; 1e-6 is ~1e-3 alpha).

    Returns:
        0-d float32 tensor.
    """
    err = torch.sqrt((pred - gt) ** 2 + eps) * mask
    return err.sum() / (mask.sum() + 1.0)


def _gauss(x: Tensor) -> Tensor:
    k = _BINOMIAL.to(x)
    k2 = (k[:, None] * k[None, :])[None, None].expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k2, groups=x.shape[1])


def laplacian_pyramid(x: Tensor, levels: int = 5) -> list[Tensor]:
    """Laplacian pyramid of ``x [B, C, H, W]`` (5×5 binomial, reflect padding): ``levels`` band-pass
    images (finest first) followed by the low-pass residual; each at half the previous size."""
    out: list[Tensor] = []
    cur = x
    for _ in range(levels):
        if min(cur.shape[-2:]) < 4:
            break
        low = _gauss(cur)
        down = low[..., ::2, ::2]
        up = F.interpolate(down, size=cur.shape[-2:], mode="bilinear", align_corners=False)
        out.append(cur - up)
        cur = down
    out.append(cur)
    return out


def laplacian_loss(pred: Tensor, gt: Tensor, mask: Tensor, levels: int = 5, norm: str = "l1") -> Tensor:
    """Laplacian-pyramid L1 (or, with ``norm="l2"``, squared error) restricted to the band.

    Compares ``pred`` and ``gt`` after both are composited over the same values outside ``mask`` (pass the
    inference blend ``mask·α_SHM + (1 − mask)·α↑`` for ``pred`` and ``mask·α_gt + (1 − mask)·α↑`` for ``gt``),
    so pixels outside the band contribute exactly zero. Each level's L1 sum is divided by the band's area at
    that level (+1), so the loss does not shrink when the band covers little of the crop.

    Args:
        pred, gt: ``[B, 1, H, W]`` in [0, 1].
        mask: ``[B, 1, H, W]`` float band.
        levels: pyramid levels.
        norm: one of :data:`LOSS_NORMS`.

    Returns:
        0-d float32 tensor.
    """
    total = pred.new_zeros(())
    m = mask
    for lp, lg in zip(laplacian_pyramid(pred, levels), laplacian_pyramid(gt, levels), strict=True):
        if m.shape[-2:] != lp.shape[-2:]:
            m = F.adaptive_avg_pool2d(mask, (int(lp.shape[-2]), int(lp.shape[-1])))
        total = total + penalty(lp - lg, norm).sum() / (m.sum() + 1.0)
    return total


def gradient_loss(pred: Tensor, gt: Tensor, mask: Tensor, norm: str = "l1") -> Tensor:
    """L1 (or, with ``norm="l2"``, squared error) between forward-difference gradients of ``pred`` and ``gt`` over
    the band. An L1 of gradients favours piecewise-constant mattes (total variation); squared, it favours smooth ones.

    Args:
        pred, gt: ``[B, 1, H, W]`` in [0, 1] (composited as for :func:`laplacian_loss`).
        mask: ``[B, 1, H, W]`` float band.
        norm: one of :data:`LOSS_NORMS`.

    Returns:
        0-d float32 tensor.
    """
    dxp, dxg = pred[..., :, 1:] - pred[..., :, :-1], gt[..., :, 1:] - gt[..., :, :-1]
    dyp, dyg = pred[..., 1:, :] - pred[..., :-1, :], gt[..., 1:, :] - gt[..., :-1, :]
    mx = mask[..., :, 1:] * mask[..., :, :-1]
    my = mask[..., 1:, :] * mask[..., :-1, :]
    return _masked_mean(penalty(dxp - dxg, norm), mx) + _masked_mean(penalty(dyp - dyg, norm), my)


def gaussian_gradient_magnitude(alpha: Tensor, sigma: float = 1.4) -> Tensor:
    """``|∇α|`` with the Grad metric's Gaussian-derivative filters (replicate borders), differentiable.

    The same filters as :func:`sparsemat.evaluation.metrics.gradient_magnitude` (RVM/DIM's, unit L2 norm), so a
    loss built on it measures what the Grad metric measures.

    Args:
        alpha: ``[B, 1, H, W]`` float32 in [0, 1].
        sigma: the filters' scale in px (the metric's 1.4).

    Returns:
        ``[B, 1, H, W]`` float32 ≥ 0.
    """
    g_np, dg_np = gauss_derivative_kernels(sigma)
    g = torch.as_tensor(g_np, dtype=alpha.dtype, device=alpha.device)
    dg = torch.as_tensor(dg_np, dtype=alpha.dtype, device=alpha.device)
    r = g.numel() // 2
    x = F.pad(alpha, (r, r, r, r), mode="replicate")
    rows_g = F.conv2d(x, g.view(1, 1, -1, 1))  # smooth along y
    rows_dg = F.conv2d(x, dg.view(1, 1, -1, 1))  # differentiate along y
    gx = F.conv2d(rows_g, dg.view(1, 1, 1, -1))
    gy = F.conv2d(rows_dg, g.view(1, 1, 1, -1))
    return torch.sqrt(gx * gx + gy * gy + 1e-12)


def over_sharpening_loss(pred: Tensor, gt: Tensor, mask: Tensor, sigma: float = 1.4) -> Tensor:
    """Mean of ``max(0, |∇p| − |∇g|)²`` over the band: the Grad metric's error where the matte is steeper than the
    ground truth.

    Squared as in the metric, which is what makes it one-sided: a monotonic edge has the same total variation
    however sharp it is, so an L1 of the positive part would charge a hardened soft edge and a softened hard edge
    alike; squared, a hardened edge pays for its whole peak while a softened one pays only for its ramp's low tails.
    Recovering a gradient the prior lost (``|∇p| < |∇g|``) costs nothing, so the symmetric terms still decide how
    sharp a true edge gets.

    Args:
        pred, gt: ``[B, 1, H, W]`` in [0, 1] (composited as for :func:`laplacian_loss`).
        mask: ``[B, 1, H, W]`` float band.
        sigma: the Gaussian-derivative scale (:func:`gaussian_gradient_magnitude`).

    Returns:
        0-d float32 tensor.
    """
    over = (gaussian_gradient_magnitude(pred, sigma) - gaussian_gradient_magnitude(gt, sigma)).clamp_min(0.0)
    return (over * over * mask).sum() / (mask.sum() + 1.0)


def local_contrast(rgb: Tensor, window: int) -> Tensor:
    """Plate contrast around each pixel: ``sqrt(Σ_c var_window(rgb_c))``.

    Args:
        rgb: ``[B, 3, H, W]`` plate in [0, 1] (display-referred, as the SHM sees it).
        window: odd box side in px; borders average over the pixels inside the image only.

    Returns:
        ``[B, 1, H, W]`` float32 ≥ 0 (0 on a flat colour; √3·0.5 ≈ 0.87 where a window straddles a
        black/white edge half and half).
    """
    mean = box_filter(rgb, window // 2)
    sq = box_filter(rgb * rgb, window // 2)
    return (sq - mean * mean).clamp_min(0.0).sum(1, keepdim=True).sqrt()


def flat_consistency_loss(pred: Tensor, base: Tensor, rgb: Tensor, mask: Tensor, window: int, contrast: float) -> Tensor:
    """L1 pull of ``pred`` towards ``base`` where the plate is flat, inside the band.

    Where the plate shows no structure the SHM has no evidence to move the alpha away from its base
    (the guided/bilinear prior it was given), so any change there is a guess; weighting each band pixel by
    ``1 − clip(local_contrast / contrast, 0, 1)`` penalises exactly those guesses and leaves pixels with
    visible edges to the data terms.

    Args:
        pred: ``[B, 1, H, W]`` SHM alpha in [0, 1].
        base: ``[B, 1, H, W]`` the alpha the SHM was given (engine first level: guided or bilinear prior).
        rgb: ``[B, 3, H, W]`` plate in [0, 1].
        mask: ``[B, 1, H, W]`` float band.
        window: odd box side of :func:`local_contrast` in px.
        contrast: local contrast at which a pixel counts as fully structured (weight 0).

    Returns:
        0-d float32 tensor: weighted mean of ``|pred − base|``.
    """
    flat = 1.0 - (local_contrast(rgb, window) / contrast).clamp(0.0, 1.0)
    w = mask * flat
    return (w * (pred - base).abs()).sum() / w.sum().clamp_min(1.0)


def resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-resize ``[B, C, H, W]`` to ``size`` (adaptive average pooling; identity when equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.adaptive_avg_pool2d(x, size)
