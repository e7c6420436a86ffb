"""Colour bound: keep each refined value between the two estimates the refiner was given.

A colour-sample refiner (``SHMConfig.colour_samples``) sees, at every active pixel, two estimates of the alpha:
the prior it refines (the guided upsampling of the low-resolution prior for guided-input refiners, the
bilinear prior otherwise) and the colour-projection alpha ``α_fb`` of the local foreground and background
colours (:mod:`sparsemat.engine.colour_samples`). Where both say the same, or where the truth lies between them,
a value outside the interval they span is an overshoot: the refiner hardening a soft edge beyond what either
estimate supports, or growing a matte onto pixels whose colour is the background's. The bound clips each value to

``[min(base, α_fb) − m, max(base, α_fb) + m]``

with ``m`` = :data:`BOUND_MARGIN`, after the refine strength and the soft-edge guard. It changes nothing where
the refiner stays inside the interval, and nothing at all for refiners without colour samples (they have no
``α_fb``). Measured in docs/experiments.md ("Twenty-fourth session").
"""

from __future__ import annotations

import torch

BOUND_MARGIN = 0.05
"""How far (alpha) a refined value may go beyond the interval of its two estimates."""


def bound_values(values: torch.Tensor, base: torch.Tensor, alpha_fb: torch.Tensor,
                 margin: float = BOUND_MARGIN) -> torch.Tensor:
    """Clip refined values to the interval spanned by the refiner's prior input and the colour-projection alpha.

    Args:
        values: ``[N]`` float32 in [0, 1], the refined alpha at the active sites.
        base: ``[N]`` float32 in [0, 1], the prior feature the refiner was given at the same sites.
        alpha_fb: ``[N]`` float32 in [0, 1], the colour-projection alpha at the same sites.
        margin: tolerance beyond the interval, in alpha (≥ 0).

    Returns:
        ``[N]`` float32 in [0, 1].
    """
    lo = torch.minimum(base, alpha_fb).sub_(margin).clamp_(0.0, 1.0)
    hi = torch.maximum(base, alpha_fb).add_(margin).clamp_(0.0, 1.0)
    return torch.minimum(torch.maximum(values, lo), hi)
