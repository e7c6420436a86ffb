"""Local foreground/background colour estimates from a low-resolution prior (the SHM's colour-sample inputs).

Sampling-based matting in its simplest form: where the prior is confident (``α > 0.98`` foreground,
``α < 0.02`` background by default — the model's ``SHMConfig.sample_levels`` —, each eroded by one low-resolution
pixel so the mixed pixels at the prior's edge stay out), the plate's colour is a sample of that layer; a push-pull
fill (normalised convolution over an image pyramid) spreads the samples into the transition band, giving a smooth
local estimate ``F̂`` and ``B̂`` at every pixel. At a band pixel of colour ``I`` the compositing equation
``I = αF + (1 − α)B`` then gives an alpha by projection, ``α_fb = clip((I − B̂)·(F̂ − B̂) / (|F̂ − B̂|² + ε))``,
trustworthy where ``|F̂ − B̂|`` is large.

SHM variants with ``SHMConfig.colour_samples`` take ``[F̂, B̂, α_fb, |F̂ − B̂|]`` (8 values) at each active site
next to RGB and the prior. The estimates are computed at the prior's resolution (about 60 ms for a 4K plate's
512×910 prior on one core), then evaluated only at the active sites by the engine (:func:`samples_at_sites`) and
densely on crops by the trainer (:func:`samples_dense`); both give the same values. Everything is display sRGB
in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sparsemat.engine.resize import upsample, upsample_at

FG_LEVEL = 0.98
"""Prior alpha above which a low-resolution pixel is a foreground colour sample (the default of
``SHMConfig.sample_levels``; every shipped model uses it)."""
BG_LEVEL = 0.02
"""Prior alpha below which a low-resolution pixel is a background colour sample (the default of
``SHMConfig.sample_levels``)."""
DEFAULT_LEVELS: tuple[float, float] = (FG_LEVEL, BG_LEVEL)
"""``(foreground, background)`` sample levels of models that do not set their own."""
ERODE = 1
"""Erosion (low-resolution px) of both sample masks: keeps the prior's mixed edge pixels out."""
PROJECTION_EPS = 1e-3
"""Regulariser of the projection's denominator (sRGB [0, 1]² units)."""
SAMPLE_CHANNELS = 8
"""Values per site: ``F̂`` (3), ``B̂`` (3), ``α_fb``, ``|F̂ − B̂|`` (clipped to [0, 1])."""
ALPHA_FB = 6
"""Index of ``α_fb`` among the :data:`SAMPLE_CHANNELS` values."""


def wants_colour_samples(refiner: object) -> bool:
    """True when ``refiner`` (an SHM) takes the colour-sample inputs (``cfg.colour_samples``)."""
    return bool(getattr(getattr(refiner, "cfg", None), "colour_samples", False))


def sample_levels(refiner: object) -> tuple[float, float]:
    """The ``(foreground, background)`` prior levels ``refiner`` was trained with (``cfg.sample_levels``), else
    :data:`DEFAULT_LEVELS`: the engine must take its colour samples as the model's training did."""
    levels = getattr(getattr(refiner, "cfg", None), "sample_levels", None)
    return DEFAULT_LEVELS if levels is None else (float(levels[0]), float(levels[1]))


def levels_problem(levels: tuple[float, ...]) -> str | None:
    """Why ``levels`` cannot be ``(foreground, background)`` sample levels, or None when they can
    (two numbers, ``0 < background < foreground < 1``)."""
    if len(levels) != 2:
        return "needs two numbers: the foreground level, then the background level (e.g. 0.98,0.02)"
    fg, bg = float(levels[0]), float(levels[1])
    if not 0.0 < bg < fg < 1.0:
        return "needs 0 < background < foreground < 1 (e.g. 0.98,0.02)"
    return None


def push_pull(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Fill ``values`` where ``weight`` is 0 from the nearest weighted samples (push-pull / normalised convolution).

    The weighted values and the weights are averaged down a pyramid (factor 2, to 1 px); going back up, each
    level keeps its own normalised average where enough of its footprint holds samples and takes the coarser
    level's estimate elsewhere.

    Args:
        values: ``[B, C, h, w]`` float.
        weight: ``[B, 1, h, w]`` float in [0, 1] (0: no sample).

    Returns:
        ``[B, C, h, w]`` float, equal to ``values`` where ``weight`` is 1 and smooth in between. Images with no
        sample at all come back as 0.
    """
    vs, ws = [values * weight], [weight]
    while max(vs[-1].shape[-2:]) > 1:  # down to one pixel: the coarsest estimate is the global sample mean
        k = (min(2, int(vs[-1].shape[-2])), min(2, int(vs[-1].shape[-1])))
        vs.append(F.avg_pool2d(vs[-1], k, ceil_mode=True))
        ws.append(F.avg_pool2d(ws[-1], k, ceil_mode=True))
    est = vs[-1] / ws[-1].clamp_min(1e-8)
    for v, w in zip(reversed(vs[:-1]), reversed(ws[:-1]), strict=True):
        up = F.interpolate(est, size=tuple(v.shape[-2:]), mode="bilinear", align_corners=False)
        keep = (w * 4.0).clamp(0.0, 1.0)  # a quarter of the footprint sampled is enough
        est = keep * (v / w.clamp_min(1e-8)) + (1.0 - keep) * up
    return est


def _erode(mask: torch.Tensor, r: int) -> torch.Tensor:
    return 1.0 - F.max_pool2d(1.0 - mask, 2 * r + 1, 1, r) if r > 0 else mask


def colour_estimates(lr_rgb: torch.Tensor, lr_prior: torch.Tensor,
                     levels: tuple[float, float] = DEFAULT_LEVELS) -> torch.Tensor:
    """Local foreground and background colours at the prior's resolution.

    Args:
        lr_rgb: ``[B, 3, h, w]`` float display sRGB in [0, 1], the plate at the prior's resolution.
        lr_prior: ``[B, 1, h, w]`` float alpha in [0, 1].
        levels: ``(foreground, background)``: prior alpha above / below which a pixel is a colour sample
            (:func:`sample_levels` of the refiner).

    Returns:
        ``[B, 6, h, w]`` float32: ``F̂`` (channels 0–2) and ``B̂`` (3–5), display sRGB in [0, 1].
    """
    rgb = lr_rgb.float()
    p = lr_prior.float()
    fg = _erode((p > float(levels[0])).float(), ERODE)
    bg = _erode((p < float(levels[1])).float(), ERODE)
    return torch.cat([push_pull(rgb, fg), push_pull(rgb, bg)], dim=1)


def sample_features(est: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """The 8 colour-sample values from ``F̂``/``B̂`` and the pixel's colour, along dimension 1.

    Args:
        est: ``[N, 6, ...]`` float32, ``F̂`` and ``B̂`` at the pixels.
        rgb: ``[N, 3, ...]`` float32 display sRGB in [0, 1], the plate at the same pixels.

    Returns:
        ``[N, 8, ...]`` float32 in [0, 1]: ``F̂, B̂, α_fb, min(|F̂ − B̂|, 1)``.
    """
    f, b = est[:, :3], est[:, 3:6]
    d = f - b
    dd = (d * d).sum(dim=1, keepdim=True)
    alpha = (((rgb - b) * d).sum(dim=1, keepdim=True) / (dd + PROJECTION_EPS)).clamp(0.0, 1.0)
    return torch.cat([f.clamp(0.0, 1.0), b.clamp(0.0, 1.0), alpha, dd.sqrt().clamp(max=1.0)], dim=1)


def samples_dense(lr_rgb: torch.Tensor, lr_prior: torch.Tensor, rgb: torch.Tensor,
                  levels: tuple[float, float] = DEFAULT_LEVELS) -> torch.Tensor:
    """Colour samples at every full-resolution pixel.

    Args:
        lr_rgb: ``[B, 3, h, w]``, lr_prior: ``[B, 1, h, w]``, levels (see :func:`colour_estimates`).
        rgb: ``[B, 3, H, W]`` float32 display sRGB in [0, 1], the full-resolution plate.

    Returns:
        ``[B, 8, H, W]`` float32 in [0, 1] (:func:`sample_features`).
    """
    est = upsample(colour_estimates(lr_rgb, lr_prior, levels), (int(rgb.shape[-2]), int(rgb.shape[-1])))
    return sample_features(est, rgb.float())


def samples_at_sites(lr_rgb: torch.Tensor, lr_prior: torch.Tensor, rgb: torch.Tensor, coords: torch.Tensor,
                     size: tuple[int, int], est: torch.Tensor | None = None,
                     levels: tuple[float, float] = DEFAULT_LEVELS) -> torch.Tensor:
    """Colour samples at some full-resolution pixels (equal to :func:`samples_dense` there).

    Args:
        lr_rgb: ``[1, 3, h, w]``, lr_prior: ``[1, 1, h, w]``, levels (see :func:`colour_estimates`).
        rgb: ``[N, 3]`` float display sRGB in [0, 1], the plate at those pixels.
        coords: ``[N, 2]`` integer ``(y, x)`` pixel coordinates in an image of ``size = (H, W)``.
        est: :func:`colour_estimates` of ``lr_rgb``/``lr_prior`` when already computed (the engine computes them
            once per frame for all cascade levels); None computes them here.

    Returns:
        ``[N, 8]`` float32 in [0, 1].
    """
    if coords.shape[0] == 0:
        return torch.zeros((0, SAMPLE_CHANNELS), dtype=torch.float32, device=rgb.device)
    vals = upsample_at(colour_estimates(lr_rgb, lr_prior, levels) if est is None else est, coords, size)  # [6, N]
    return sample_features(vals.t(), rgb.float())
