"""Soft-edge guard: fade the refiner out where the prior's own transition is wide.

The SHM exists for detail finer than one prior pixel (hair, sharp edges the ~512 px prior cannot resolve). A
transition that spans many prior pixels — a defocused edge, smoke, a motion-blurred limb — is already resolved by
the prior, and the guided upsampling of the prior follows it; the refiner, trained mostly on fine detail, tends to
harden or halo it (docs/models.md, "Ninth session"). The guard measures, per prior pixel, how steep the prior is:

``g = clip(max_{3×3} |∇α_lr| / τ, 0, 1)``

with ``|∇α_lr|`` the central-difference gradient magnitude of the low-resolution prior in alpha per prior pixel,
the maximum taken over the 3 × 3 neighbourhood (so the foot of a sharp edge counts as sharp) and ``τ`` the knob
``soft_edge_guard``. ``g`` is bilinearly upsampled to the active sites and multiplies the ``refine_strength`` of
each site (:func:`sparsemat.engine.refine.temper_refinement`): ``g = 1`` keeps the refined value, ``g = 0`` keeps
the refiner's prior input (the guided upsampling for guided-input refiners). A transition of width ``w`` prior
pixels has a slope of about ``1 / w``, so refinement fades out for transitions wider than about ``1 / τ`` prior
pixels; ``τ = 0`` turns the guard off.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sparsemat.engine.resize import upsample_at


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
