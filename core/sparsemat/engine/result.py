"""What the engine returns for one frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FrameStats:
    """Per-frame statistics, written into output metadata and shown in hosts.

    Attributes:
        frame: frame number.
        active_pixels: pixels refined by the SHM at full resolution (0 when none ran there).
        active_share: ``active_pixels / (H·W)``.
        band_pixels: pixels in the spatial band at full resolution.
        cascade_scales: scales at which the SHM ran, coarse to fine (e.g. ``[0.25, 0.5, 1.0]``).
        stage_seconds: wall seconds per stage: ``prior``, ``maps``, ``shm``, ``blend``.
        shm_gmacs: analytic giga multiply-accumulates of the SHM passes run for this frame (a reused pass counts 0).
        shm_reused: SHM passes whose raw output was reused from an identical earlier pass instead of being run
            (interactive sessions, after a change of Refine strength, Soft-edge guard or Colour bound).
        temporal_reused: True when the previous frame's matte was reused outside changed pixels.
        prior_reused: True when the prior's output came from the viewer's memo (:mod:`~sparsemat.engine.prior_memo`).
        keyframe: True when this frame was computed without history (keyframe or cold start).
        prior_name: which prior produced the coarse matte, and why (e.g. ``"rvm (auto: no matte input)"``).
        budget: the active-pixel budget in force.
        warnings: human-readable notes (budget degradation, size change…).
    """

    frame: int
    active_pixels: int = 0
    active_share: float = 0.0
    band_pixels: int = 0
    cascade_scales: list[float] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    shm_gmacs: float = 0.0
    shm_reused: int = 0
    temporal_reused: bool = False
    prior_reused: bool = False
    keyframe: bool = True
    prior_name: str = ""
    budget: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        """Sum of the stage times."""
        return float(sum(self.stage_seconds.values()))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "frame": self.frame,
            "active_pixels": self.active_pixels,
            "active_share": self.active_share,
            "band_pixels": self.band_pixels,
            "cascade_scales": list(self.cascade_scales),
            "stage_seconds": dict(self.stage_seconds),
            "total_seconds": self.total_seconds,
            "shm_gmacs": self.shm_gmacs,
            "shm_reused": self.shm_reused,
            "temporal_reused": self.temporal_reused,
            "prior_reused": self.prior_reused,
            "keyframe": self.keyframe,
            "prior_name": self.prior_name,
            "budget": self.budget,
            "warnings": list(self.warnings),
        }


@dataclass
class FrameResult:
    """The refined matte of one frame and how it was made.

    Attributes:
        alpha: ``[H, W]`` float32 in [0, 1], full plate resolution (linear coverage, no colour space).
        prior: ``[H, W]`` float32 in [0, 1], the coarse prior upsampled to full resolution.
        spatial: ``[H, W]`` bool, the dilated transition band of the prior (at full resolution).
        temporal: ``[H, W]`` bool of changed pixels, or None when no history was used.
        active: ``[H, W]`` bool, pixels the SHM refined at full resolution (``spatial ∩ temporal``).
        stats: :class:`FrameStats`.
    """

    alpha: np.ndarray
    prior: np.ndarray
    spatial: np.ndarray
    temporal: np.ndarray | None
    active: np.ndarray
    stats: FrameStats
