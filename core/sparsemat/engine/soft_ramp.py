"""Soft-edge guard: fade the refiner out where the prior's own transition is wide.

The SHM exists for detail finer than one prior pixel (hair, sharp edges the ~512 px prior cannot resolve). A
transition that spans many prior pixels — a defocused edge, smoke, a motion-blurred limb — is already resolved by
the prior, and the guided upsampling of the prior follows it; the refiner, trained mostly on fine detail, tends to
harden or halo it (docs/experiments.md, "Ninth session"). The guard measures, per prior pixel, how steep the prior is:

``g = clip(max_{3×3} |∇α_lr| / τ, 0, 1)``

with ``|∇α_lr|`` the central-difference gradient magnitude of the low-resolution prior in alpha per prior pixel,
the maximum taken over the 3 × 3 neighbourhood (so the foot of a sharp edge counts as sharp) and ``τ`` the knob
``soft_edge_guard``. ``g`` is bilinearly upsampled to the active sites and multiplies the ``refine_strength`` of
each site (:func:`sparsemat.engine.refine.temper_refinement`): ``g = 1`` keeps the refined value, ``g = 0`` keeps
the refiner's prior input (the guided upsampling for guided-input refiners). A transition of width ``w`` prior
pixels has a slope of about ``1 / w``, so refinement fades out for transitions wider than about ``1 / τ`` prior
pixels; ``τ = 0`` turns the guard off.

A haze of fine hair is soft and shallow in the low-resolution prior too, yet the plate shows every strand. So the
guard spares structure the plate itself shows: at each active site the weight is at least
``clip(c₅ / STRUCTURE_CONTRAST, 0, 1)``, with ``c₅`` the full-resolution plate's 5 × 5 local contrast
(:func:`plate_contrast_at_sites`). A defocused edge or smoke is smooth in the plate as well and stays guarded
(docs/experiments.md, "Thirteenth session").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sparsemat.engine.resize import upsample_at

STRUCTURE_CONTRAST = 0.1
"""Plate contrast (:func:`plate_contrast_at_sites`) at and above which the guard keeps refinement in full. Fixed
before it was measured (the trainer's flat-region contrast); 0.1 is a 5 × 5 window whose values have a standard
deviation of about 0.058 in each channel (fine strands against sky; film grain of that size counts too)."""

STRUCTURE_RADIUS = 2
"""Half side of the plate-contrast window: 5 × 5 full-resolution pixels."""


def ramp_gate(lr_prior: torch.Tensor, tau: float) -> torch.Tensor:
    """The guard's weight at the prior's resolution.

    Args:
        lr_prior: ``[1, 1, h, w]`` float alpha in [0, 1] (the low-resolution prior).
        tau: slope in alpha per prior pixel at and above which refinement is kept in full (> 0).

    Returns:
        ``[1, 1, h, w]`` float32 in [0, 1].
    """
    a = F.pad(lr_prior.float(), (1, 1, 1, 1), mode="replicate")
    gy = (a[..., 2:, 1:-1] - a[..., :-2, 1:-1]) * 0.5
    gx = (a[..., 1:-1, 2:] - a[..., 1:-1, :-2]) * 0.5
    slope = torch.sqrt(gx * gx + gy * gy)
    slope = F.max_pool2d(slope, 3, 1, 1)
    return (slope / float(tau)).clamp_(0.0, 1.0)


def gate_at_sites(gate: torch.Tensor, coords: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """:func:`ramp_gate`'s weight bilinearly upsampled to a plate of ``size`` ``(H, W)``, at ``coords``.

    Args:
        gate: ``[1, 1, h, w]`` float32 in [0, 1].
        coords: ``[N, 2]`` integer ``(y, x)``.

    Returns:
        ``[N]`` float32 in [0, 1].
    """
    return upsample_at(gate, coords, size)[0].clamp_(0.0, 1.0)


def plate_contrast_at_sites(rgb_hwc: torch.Tensor, coords: torch.Tensor, radius: int = STRUCTURE_RADIUS) -> torch.Tensor:
    """The plate's local contrast ``sqrt(Σ_c var(rgb_c))`` over the ``(2r+1)²`` window around each site.

    Equal to :func:`sparsemat.train.losses.local_contrast` (window ``2r+1``) read at the sites — windows clipped to
    the image average the pixels inside it only — but computed from the sites' neighbourhoods, so the cost follows
    the number of sites, not the plate's size, and relative to each window's centre, so a flat plate gives 0
    instead of the square root of float32 round-off (about 4e-4).

    Args:
        rgb_hwc: ``[H, W, 3]`` float plate, display sRGB in [0, 1] (as the refiner sees it).
        coords: ``[N, 2]`` integer ``(y, x)``.
        radius: window half side ``r``.

    Returns:
        ``[N]`` float32 ≥ 0 (0 on a flat colour; about 0.87 for a black/white edge split half and half).
    """
    h, w = int(rgb_hwc.shape[0]), int(rgb_hwc.shape[1])
    r = int(radius)
    out = torch.empty(int(coords.shape[0]), dtype=torch.float32, device=rgb_hwc.device)
    if out.numel() == 0:
        return out
    flat = rgb_hwc.reshape(-1, 3).float()
    ys, xs = coords[:, 0].long(), coords[:, 1].long()
    inner = (ys >= r) & (ys < h - r) & (xs >= r) & (xs < w - r)
    ii = torch.nonzero(inner)[:, 0]
    if ii.numel():  # whole windows: flat offsets, no clipping
        centre = ys[ii] * w + xs[ii]
        ref = flat.index_select(0, centre)
        total = torch.zeros_like(ref)
        squares = torch.zeros_like(ref)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                v = flat.index_select(0, centre + (dy * w + dx)).sub_(ref)
                total += v
                squares.addcmul_(v, v)
        out[ii] = _contrast(total, squares, float((2 * r + 1) ** 2))
    bi = torch.nonzero(~inner)[:, 0]
    if bi.numel():  # windows clipped by the image border
        by, bx = ys[bi], xs[bi]
        ref = flat.index_select(0, by * w + bx)
        total = torch.zeros_like(ref)
        squares = torch.zeros_like(ref)
        count = torch.zeros(int(bi.numel()), dtype=torch.float32, device=rgb_hwc.device)
        for dy in range(-r, r + 1):
            yy = by + dy
            row_ok = (yy >= 0) & (yy < h)
            row = yy.clamp(0, h - 1) * w
            for dx in range(-r, r + 1):
                xx = bx + dx
                keep = (row_ok & (xx >= 0) & (xx < w)).float()
                v = flat.index_select(0, row + xx.clamp(0, w - 1)).sub_(ref).mul_(keep[:, None])
                total += v
                squares.addcmul_(v, v)
                count += keep
        out[bi] = _contrast(total, squares, count[:, None])
    return out


def _contrast(total: torch.Tensor, squares: torch.Tensor, count: float | torch.Tensor) -> torch.Tensor:
    """``sqrt(Σ_c var)`` from per-channel sums of values and of their squares over ``count`` pixels."""
    mean = total / count
    return (squares / count - mean * mean).clamp_min_(0.0).sum(1).sqrt_()


def guard_at_sites(gate: torch.Tensor, coords: torch.Tensor, size: tuple[int, int],
                   rgb_hwc: torch.Tensor | None = None, contrast: float = STRUCTURE_CONTRAST) -> torch.Tensor:
    """The guard's weight at the sites: :func:`gate_at_sites`, at least ``clip(c₅ / contrast)`` where a plate is given.

    Args:
        gate: ``[1, 1, h, w]`` float32 in [0, 1] (:func:`ramp_gate`).
        coords: ``[N, 2]`` integer ``(y, x)`` on a plate of ``size`` ``(H, W)``.
        rgb_hwc: ``[H, W, 3]`` float plate, display sRGB in [0, 1]; None (or ``contrast`` ≤ 0) leaves the
            slope gate alone.
        contrast: plate contrast that keeps refinement in full (:data:`STRUCTURE_CONTRAST`).

    Returns:
        ``[N]`` float32 in [0, 1]. The plate's contrast is computed only where the slope gate is below 1.
    """
    g = gate_at_sites(gate, coords, size)
    if rgb_hwc is None or contrast <= 0.0:
        return g
    soft = torch.nonzero(g < 1.0)[:, 0]
    if soft.numel():
        c = plate_contrast_at_sites(rgb_hwc, coords[soft]) / float(contrast)
        g[soft] = torch.maximum(g[soft], c.clamp_(0.0, 1.0))
    return g
