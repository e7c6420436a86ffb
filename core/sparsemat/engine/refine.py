"""Run the SHM on the active pixels of one level: gather → sparse forward → values."""

from __future__ import annotations

from typing import Any

import torch

from sparsemat.engine.colour_bound import bound_values
from sparsemat.engine.colour_samples import (
    ALPHA_FB,
    SAMPLE_CHANNELS,
    sample_levels,
    samples_at_sites,
    wants_colour_samples,
)
from sparsemat.engine.guided import guided_at_sites
from sparsemat.engine.refine_memo import RefinementMemo
from sparsemat.engine.soft_ramp import STRUCTURE_CONTRAST, guard_at_sites


def refine_sites(
    refiner: Any,
    backend: Any,
    rgb_hwc: torch.Tensor,
    prior: torch.Tensor,
    mask: torch.Tensor,
    lr_rgb: torch.Tensor,
    lr_prior: torch.Tensor,
    ctx: torch.Tensor | None = None,
    guide: tuple[torch.Tensor, torch.Tensor] | None = None,
    colour_est: torch.Tensor | None = None,
    strength: float = 1.0,
    gate: torch.Tensor | None = None,
    spare_structure: float = STRUCTURE_CONTRAST,
    count_macs: bool = True,
    bound_margin: float | None = None,
    memo: RefinementMemo | None = None,
) -> tuple[torch.Tensor, float]:
    """Refine the pixels where ``mask`` is set.

    Only the active pixels are gathered; no dense feature map is ever built at this resolution.

    Args:
        refiner: the SHM module (eval mode).
        backend: sparse backend from :func:`sparsemat.sparse.get_backend`.
        rgb_hwc: ``[H, W, 3]`` float, display sRGB in [0, 1].
        prior: ``[H, W]`` float32 in [0, 1], the current prior at this level.
        mask: ``[H, W]`` bool active pixels.
        lr_rgb: ``[1, 3, h, w]`` float32 sRGB [0, 1], the prior network's input.
        lr_prior: ``[1, 1, h, w]`` float32 [0, 1], the low-resolution prior (refiners with ``colour_samples``
            also take their foreground/background colour estimates from these two).
        ctx: optional external context for refiners trained on LPN features.
        guide: guided-filter coefficients ``(A [1,3,h,w], b [1,1,h,w])`` of the low-res prior
            (:func:`sparsemat.engine.guided.guided_coefficients`): the prior feature of each site is then the
            guided upsampling at that site instead of ``prior`` (refiners with ``guided_prior``).
        colour_est: ``[1, 6, h, w]`` :func:`~sparsemat.engine.colour_samples.colour_estimates` of ``lr_rgb`` and
            ``lr_prior`` at the refiner's :func:`~sparsemat.engine.colour_samples.sample_levels`, when the caller
            already has them (refiners with ``colour_samples``; None computes them).
        strength: the ``refine_strength`` knob in [0, 1]; below 1 each value is pulled towards the prior feature
            the refiner was given (:func:`temper_refinement`).
        gate: ``[1, 1, h, w]`` float32 in [0, 1], the soft-edge guard's weight at the prior's resolution
            (:func:`sparsemat.engine.soft_ramp.ramp_gate`); each site's strength is ``strength`` times the weight
            upsampled to it. None: ``strength`` everywhere.
        spare_structure: with ``gate``, the plate contrast at and above which a site keeps full refinement
            whatever its gate (:func:`sparsemat.engine.soft_ramp.guard_at_sites`: structure the plate shows, such
            as dense hair); 0 applies the slope gate alone.
        count_macs: count the pass's multiply-accumulates (free on the torch backend, which keeps the strided
            site sets of the pass; a full site-set rebuild on the others). False returns 0 MACs, for timed
            benchmarks that count them outside the clock with :func:`site_macs`.
        bound_margin: the colour bound (:func:`sparsemat.engine.colour_bound.bound_values`): each value is clipped
            to the interval of the site's prior feature and colour-projection alpha, widened by this much. None: off;
            refiners without colour samples are never bounded.
        memo: the session's :class:`~sparsemat.engine.refine_memo.RefinementMemo`: a pass whose inputs are
            bit-identical to a kept one reuses its raw output instead of running the network (strength, guard and
            bound still apply, so a knob after the refiner is cheap to change); its MACs are then 0. None: always run.

    Returns:
        ``(values [N] float32 in [0, 1] in row-major order of the mask's True pixels, MACs)``.
    """
    coords = torch.nonzero(mask)  # [N, 2] (y, x), row-major: the canonical site order
    if coords.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float32, device=prior.device), 0.0
    ys, xs = coords[:, 0], coords[:, 1]
    size = (int(mask.shape[0]), int(mask.shape[1]))
    feats = torch.empty((coords.shape[0], input_channels(refiner)), dtype=torch.float32, device=prior.device)
    feats[:, :3] = rgb_hwc[ys, xs].float()
    if guide is not None:
        feats[:, 3] = guided_at_sites(guide, feats[:, :3], coords, size)
    else:
        feats[:, 3] = prior[ys, xs]
    if feats.shape[1] > 4:
        feats[:, 4:] = samples_at_sites(lr_rgb, lr_prior, feats[:, :3], coords, size, est=colour_est,
                                          levels=sample_levels(refiner))
    site_strength: float | torch.Tensor = strength
    if gate is not None and strength > 0.0:
        site_strength = strength * guard_at_sites(gate, coords, size, rgb_hwc, spare_structure)
    tempered = gate is not None or strength < 1.0
    bounded = bound_margin is not None and feats.shape[1] > 4
    base = feats[:, 3].clone() if (tempered or bounded) else None
    alpha_fb = feats[:, 4 + ALPHA_FB].clone() if bounded else None
    hit = memo.lookup(refiner, backend.name, mask, feats, lr_rgb, lr_prior, ctx) if memo is not None else None
    if hit is not None:
        result, macs = hit, 0.0
    else:
        kept = feats.clone() if memo is not None else None
        feats.mul_(2.0).sub_(1.0)  # network range [-1, 1]
        x = _site_map(backend, coords, feats, mask)
        out = refiner(x, lr_rgb, lr_prior, ctx)
        macs = float(refiner.macs(x)) if count_macs and hasattr(refiner, "macs") else 0.0
        _, values = backend.values(out.alpha)
        result = values[:, 0].float()
        if memo is not None and kept is not None:
            memo.store(refiner, backend.name, mask, kept, lr_rgb, lr_prior, ctx, result)
    if tempered and base is not None:
        result = temper_refinement(result, base, site_strength)
    if bounded and base is not None and alpha_fb is not None and bound_margin is not None:
        result = bound_values(result, base, alpha_fb, bound_margin)
    return result, macs


def site_macs(refiner: Any, backend: Any, mask: torch.Tensor) -> float:
    """Multiply-accumulates of one refiner pass over the pixels where ``mask`` (``[H, W]`` bool) is set.

    The count depends only on the site sets, so it is computed on zero features without running the network.
    """
    if not hasattr(refiner, "macs"):
        return 0.0
    coords = torch.nonzero(mask)
    if coords.shape[0] == 0:
        return 0.0
    feats = torch.zeros((coords.shape[0], input_channels(refiner)), dtype=torch.float32, device=coords.device)
    return float(refiner.macs(_site_map(backend, coords, feats, mask)))


def input_channels(refiner: Any) -> int:
    """Features per site ``refiner`` takes: RGB and the prior, plus the colour samples when it wants them."""
    return 4 + (SAMPLE_CHANNELS if wants_colour_samples(refiner) else 0)


def _site_map(backend: Any, coords: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor) -> Any:
    """One-image sparse map of ``feats [N, C]`` at ``coords [N, 2]`` (y, x) on ``mask``'s grid."""
    batch = torch.zeros((coords.shape[0], 1), dtype=coords.dtype, device=coords.device)
    coords3 = torch.cat([batch, coords], dim=1).contiguous()
    return backend.from_coords(coords3, feats, (int(mask.shape[0]), int(mask.shape[1])), 1)


BASE_LOGIT_EPS = 1e-3
"""Clamp of the prior's logit, as the residual SHM's ``σ(head + logit(prior))`` (``models/shm.py``)."""


def temper_refinement(alpha: torch.Tensor, base: torch.Tensor, strength: float | torch.Tensor) -> torch.Tensor:
    """Pull refined values towards the prior the refiner was given: ``σ(s·logit(α) + (1 − s)·logit(base))``.

    For a residual refiner (``α = σ(head + logit(base))``) this is exactly the refiner with its correction scaled by
    ``s`` (``σ(s·head + logit(base))``, up to float32 saturation of α); for any refiner ``s = 1`` returns ``alpha``
    and ``s = 0`` returns ``base``.

    Args:
        alpha: float32 in [0, 1], the refiner's values (``[N]`` sites, or any shape).
        base: float32 in [0, 1], the prior feature at the same places (the guided or bilinear prior).
        strength: ``s`` in [0, 1]: a number, or a float tensor of ``alpha``'s shape (one strength per site).

    Returns:
        float32 in [0, 1], the shape of ``alpha``.
    """
    s: float | torch.Tensor
    if isinstance(strength, torch.Tensor):
        s = strength.double().clamp(0.0, 1.0)
    elif strength >= 1.0:
        return alpha
    elif strength <= 0.0:
        return base.clone()
    else:
        s = float(strength)
    la = torch.logit(alpha.double(), eps=1e-12)
    lb = torch.logit(base.double(), eps=BASE_LOGIT_EPS)
    out = torch.sigmoid(s * la + (1.0 - s) * lb).float()
    if isinstance(s, torch.Tensor):  # the ends exactly, as for a number
        out = torch.where(s >= 1.0, alpha, torch.where(s <= 0.0, base, out))
    return out
