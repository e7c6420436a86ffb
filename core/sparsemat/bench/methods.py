"""The measured methods. Each runs one plate sequence in the current process and returns a record.

Methods (all read the EXR plate and prior and write an RGBA half EXR, timed as the ``io`` stage):

* ``sparse`` — the engine (:class:`sparsemat.engine.Session`, ``input`` prior, temporal reuse off so every
  frame is a full spatial pass): backend ``torch`` on CPU, ``spconv`` on CUDA.
* ``dense`` — the same SHM weights on every pixel at full resolution: the ``dense`` backend with an
  all-ones mask (the SHM output replaces the prior everywhere).
* ``patch`` — the same SHM run densely on 512-px tiles with 64-px (1/8) overlap, each tile's low-resolution
  context taken from the tile itself, blended with linear ramps (the paper's Table 4 baseline shape).
* ``guided`` — fast guided-filter upsampling of the low-resolution prior (the cheap baseline; its filter
  time is counted under ``blend``).
* ``temporal`` — the engine on a sequence with temporal reuse on or off (per-frame active share, SHM MACs,
  dtSSD against the ground truth).
* ``tweak`` — an artist's knob tweak in the viewer: the frame is rendered, then each knob of :data:`TWEAKS`
  that acts after the refiner is changed in turn and the frame rendered again, by two sessions side by side on
  the same refiner — one keeping the refiner's output (``reuse_refinement``, as the viewer does) and one
  without — timing each re-render's engine seconds and checking the two mattes are identical.

Stage names: ``prior`` (plate → low resolution, prior resampling), ``maps`` (band / masks / tiling),
``shm`` (the refiner), ``blend`` (assembling the full-resolution matte), ``io`` (EXR read + write).
"""

from __future__ import annotations

import math
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sparsemat.bench.plates import PlateSet

METHODS = ("sparse", "dense", "patch", "guided", "temporal", "tweak")
STAGES = ("prior", "maps", "shm", "blend", "io")
TILE = 512
#: Knob changes timed by the ``tweak`` method, each from the engine defaults (knobs that act after the refiner).
TWEAKS: tuple[dict[str, Any], ...] = ({"refine_strength": 0.7}, {"soft_edge_guard": 0.3}, {"colour_bound": True})
OVERLAP = 64


# ------------------------------------------------------------------------------------------------ memory
def rss_bytes() -> int:
    """Current resident set size of this process in bytes (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes() -> int:
    """Peak RSS of this process in bytes: ``VmHWM`` (per address space, so not inflated by the parent
    a subprocess was forked from), else ``getrusage(RUSAGE_SELF).ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (``/proc/self/clear_refs`` ← 5, Linux ≥ 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ timing
class StageClock:
    """Wall seconds per stage for one frame, synchronising CUDA so GPU work is counted where it happens."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        """Time the ``with`` block into ``stage`` (accumulating)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


@dataclass
class FrameOutcome:
    """One processed frame: its matte and its measurements."""

    alpha: np.ndarray
    stage_seconds: dict[str, float]
    shm_gmacs: float = 0.0
    active_share: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- I/O stage
def read_inputs(plates: PlateSet, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb [H, W, 3] float32 display sRGB, prior [h, w] float32)`` read from the EXR files."""
    from sparsemat.io import read_matte, read_plate

    plate = read_plate(plates.plate_path(frame))
    return plate.rgb, read_matte(plates.prior_path(frame))


def write_output(folder: str, frame: int, rgb: np.ndarray, alpha: np.ndarray) -> None:
    """Write ``frame`` as an RGBA half EXR (the plate's display RGB with the matte in A)."""
    from sparsemat.io import write_frame

    write_frame(os.path.join(folder, f"out.{frame:04d}.exr"),
                {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2], "A": alpha})


# -------------------------------------------------------------------------------------------- helpers
def _lowres(rgb: np.ndarray, prior: np.ndarray, device: torch.device, prior_size: int = 512
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rgb_hwc, lr_rgb [1,3,h,w], lr_prior [1,1,h,w], prior_hr [H,W])`` as the engine computes them."""
    from sparsemat.engine.resize import downsample, resize_plane
    from sparsemat.priors.base import prior_input_size

    h, w = rgb.shape[:2]
    rgb_hwc = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    lr_size = prior_input_size(h, w, prior_size)
    lr_rgb = downsample(rgb_hwc.permute(2, 0, 1)[None], lr_size).clamp_(0, 1)
    matte = torch.from_numpy(np.ascontiguousarray(prior, dtype=np.float32)).to(device)
    lr_prior = resize_plane(matte, (int(lr_rgb.shape[-2]), int(lr_rgb.shape[-1])))[None, None].clamp_(0, 1)
    prior_hr = resize_plane(matte, (h, w)).clamp_(0, 1)
    return rgb_hwc, lr_rgb, lr_prior, prior_hr


def _refiner_prior(refiner: object, rgb_hwc: torch.Tensor, lr_rgb: torch.Tensor, lr_prior: torch.Tensor,
                   prior_hr: torch.Tensor) -> torch.Tensor:
    """The refiner's prior input at every pixel ``[H, W]``: the guided upsampling of the low-res prior for refiners
    with ``guided_prior`` (as the engine's first level), else ``prior_hr``."""
    from sparsemat.engine.guided import guided_dense, wants_guided_prior

    if not wants_guided_prior(refiner):
        return prior_hr
    return guided_dense(lr_rgb, lr_prior, rgb_hwc.permute(2, 0, 1)[None].float())[0, 0]


def tile_starts(length: int, tile: int = TILE, overlap: int = OVERLAP) -> list[int]:
    """Start offsets of tiles of ``tile`` px with at least ``overlap`` px overlap covering ``length`` px."""
    if length <= tile:
        return [0]
    step = tile - overlap
    n = math.ceil((length - overlap) / step)
    starts = [min(i * step, length - tile) for i in range(n)]
    return sorted(set(starts))


def ramp(length: int, lo_edge: bool, hi_edge: bool, overlap: int = OVERLAP) -> np.ndarray:
    """1-D blend weight of a tile: linear ramps over ``overlap`` px at interior edges, 1 elsewhere."""
    r = np.ones(length, dtype=np.float32)
    n = min(overlap, length // 2)
    up = (np.arange(n, dtype=np.float32) + 0.5) / n
    if not lo_edge:
        r[:n] = up
    if not hi_edge:
        r[length - n:] = up[::-1]
    return r


# -------------------------------------------------------------------------------------------- methods
class Method:
    """A method bound to a model config, backend and device; ``frame()`` processes one frame."""

    def __init__(self, name: str, config: str, backend: str, device: torch.device, temporal: bool = False) -> None:
        from sparsemat.builders import build_shm
        from sparsemat.sparse import get_backend

        self.name = name
        self.config = config
        self.device = device
        self.refiner = build_shm(config, device=device) if name != "guided" else None
        sparse_backend = backend if name in ("sparse", "temporal", "tweak") else "dense"
        self.backend = get_backend(sparse_backend, device) if name != "guided" else None
        self.session: Any = None
        self.session_full: Any = None
        if name in ("sparse", "temporal", "tweak"):
            from sparsemat.engine import Session
            from sparsemat.settings import Settings

            self.settings = Settings(prior="input", model=config, backend=backend, device=device.type,
                                     temporal=temporal or False, keyframe_interval=0)
            self.session = Session(self.settings, refiner=self.refiner, reuse_refinement=name == "tweak")
            if name == "tweak":
                self.session_full = Session(self.settings, refiner=self.refiner)
        self._run: Callable[[int, np.ndarray, np.ndarray, StageClock], FrameOutcome] = {
            "sparse": self._sparse, "temporal": self._sparse, "dense": self._dense,
            "patch": self._patch, "guided": self._guided, "tweak": self._tweak,
        }[name]

    def frame(self, index: int, rgb: np.ndarray, prior: np.ndarray, clock: StageClock) -> FrameOutcome:
        """Process one frame already read (``rgb`` display sRGB, ``prior`` low-resolution matte)."""
        with torch.inference_mode():
            return self._run(index, rgb, prior, clock)

    # -- engine
    def _sparse(self, index: int, rgb: np.ndarray, prior: np.ndarray, clock: StageClock) -> FrameOutcome:
        from sparsemat.engine import FrameInput

        res = self.session.process(index, FrameInput(rgb=rgb, matte=prior))
        for k, v in res.stats.stage_seconds.items():
            clock.seconds[k] = clock.seconds.get(k, 0.0) + v
        extra = {"temporal_reused": res.stats.temporal_reused, "warnings": list(res.stats.warnings),
                 "cascade_scales": list(res.stats.cascade_scales), "band_pixels": res.stats.band_pixels}
        return FrameOutcome(res.alpha, dict(clock.seconds), res.stats.shm_gmacs, res.stats.active_share, extra)

    # -- knob tweaks after the refiner, with and without the kept refiner output
    def _tweak(self, index: int, rgb: np.ndarray, prior: np.ndarray, clock: StageClock) -> FrameOutcome:
        import dataclasses

        from sparsemat.engine import FrameInput

        inp = FrameInput(rgb=rgb, matte=prior)
        for session in (self.session, self.session_full):  # the frame as first shown (not timed)
            session.update(self.settings)
            session.process(index, inp)
        timed: dict[str, list[float]] = {"reuse": [], "full": []}
        worst, reused = 0.0, 0
        res: Any = None
        for change in TWEAKS:
            settings = dataclasses.replace(self.settings, **change)
            alphas = {}
            for key, session in (("reuse", self.session), ("full", self.session_full)):
                session.update(settings)
                res = session.process(index, inp)
                timed[key].append(res.stats.total_seconds)
                alphas[key] = res.alpha
                if key == "reuse":
                    reused += res.stats.shm_reused
                    for k, v in res.stats.stage_seconds.items():
                        clock.seconds[k] = clock.seconds.get(k, 0.0) + v / len(TWEAKS)
            worst = max(worst, float(np.abs(alphas["reuse"] - alphas["full"]).max()))
        extra = {"tweak_reuse_seconds": timed["reuse"], "tweak_full_seconds": timed["full"],
                 "tweak_max_abs_diff": worst, "tweak_reused_passes": reused, "tweaks": [dict(t) for t in TWEAKS]}
        return FrameOutcome(res.alpha, dict(clock.seconds), res.stats.shm_gmacs, res.stats.active_share, extra)

    # -- same weights, dense
    def _dense(self, index: int, rgb: np.ndarray, prior: np.ndarray, clock: StageClock) -> FrameOutcome:
        from sparsemat.engine.refine import refine_sites, site_macs

        h, w = rgb.shape[:2]
        with clock("prior"):
            rgb_hwc, lr_rgb, lr_prior, prior_hr = _lowres(rgb, prior, self.device)
        with clock("maps"):
            ones = torch.ones((h, w), dtype=torch.bool, device=self.device)
        with clock("shm"):
            base = _refiner_prior(self.refiner, rgb_hwc, lr_rgb, lr_prior, prior_hr)
            values, _ = refine_sites(self.refiner, self.backend, rgb_hwc, base, ones, lr_rgb, lr_prior,
                                     count_macs=False)
        with clock("blend"):
            alpha = values.reshape(h, w).clamp(0, 1).float().cpu().numpy()
        macs = site_macs(self.refiner, self.backend, ones)  # bookkeeping, outside the clock
        return FrameOutcome(alpha, dict(clock.seconds), macs / 1e9, 1.0)

    # -- same weights, dense on tiles
    def _patch(self, index: int, rgb: np.ndarray, prior: np.ndarray, clock: StageClock) -> FrameOutcome:
        from sparsemat.engine.refine import refine_sites, site_macs
        from sparsemat.engine.resize import downsample, resize_plane

        h, w = rgb.shape[:2]
        with clock("prior"):
            rgb_hwc, lr_rgb, lr_prior, prior_hr = _lowres(rgb, prior, self.device)
        with clock("shm"):  # the refiner's prior input from the whole frame's low-res prior, as the engine
            base = _refiner_prior(self.refiner, rgb_hwc, lr_rgb, lr_prior, prior_hr)
        with clock("maps"):
            ys, xs = tile_starts(h), tile_starts(w)
            th, tw = min(TILE, h), min(TILE, w)
            acc = torch.zeros((h, w), dtype=torch.float32, device=self.device)
            wsum = torch.zeros((h, w), dtype=torch.float32, device=self.device)
            ones = torch.ones((th, tw), dtype=torch.bool, device=self.device)
        for y0 in ys:
            for x0 in xs:
                with clock("maps"):
                    t_rgb = rgb_hwc[y0:y0 + th, x0:x0 + tw]
                    t_prior = prior_hr[y0:y0 + th, x0:x0 + tw]
                    # the tile's own low-resolution context (a tile is already at the prior's scale)
                    t_lr_rgb = downsample(t_rgb.permute(2, 0, 1)[None], (th, tw)).clamp_(0, 1)
                    t_lr_prior = resize_plane(t_prior, (th, tw))[None, None]
                with clock("shm"):
                    t_base = base[y0:y0 + th, x0:x0 + tw]
                    values, _ = refine_sites(self.refiner, self.backend, t_rgb, t_base, ones, t_lr_rgb, t_lr_prior,
                                             count_macs=False)
                with clock("blend"):
                    wy = ramp(th, y0 == 0, y0 + th >= h)
                    wx = ramp(tw, x0 == 0, x0 + tw >= w)
                    wt = torch.from_numpy(np.outer(wy, wx)).to(self.device)
                    acc[y0:y0 + th, x0:x0 + tw] += wt * values.reshape(th, tw)
                    wsum[y0:y0 + th, x0:x0 + tw] += wt
        with clock("blend"):
            alpha = (acc / wsum.clamp_min(1e-6)).clamp_(0, 1).cpu().numpy()
        macs = len(ys) * len(xs) * site_macs(self.refiner, self.backend, ones)  # equal tiles; outside the clock
        return FrameOutcome(alpha, dict(clock.seconds), macs / 1e9, 1.0, {"tiles": len(ys) * len(xs)})

    # -- guided filter
    def _guided(self, index: int, rgb: np.ndarray, prior: np.ndarray, clock: StageClock) -> FrameOutcome:
        from sparsemat.evaluation import guided_upsample

        with clock("prior"):
            _rgb_hwc, _lr_rgb, lr_prior, _prior_hr = _lowres(rgb, prior, torch.device("cpu"))
        with clock("blend"):
            alpha = guided_upsample(lr_prior[0, 0].numpy(), rgb).astype(np.float32)
        return FrameOutcome(alpha, dict(clock.seconds), 0.0, 0.0)


# ------------------------------------------------------------------------------------------- estimates
def paper_dense_gmacs(height: int = 2160, width: int = 3840, config: str = "paper") -> float:
    """Analytic SHM GMACs of one dense pass (every pixel active) at ``height × width``."""
    from sparsemat.builders import SHM_CONFIGS
    from sparsemat.models.shm import SHM
    from sparsemat.sparse import from_coords

    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    coords = torch.stack([torch.zeros_like(yy), yy, xx], -1).reshape(-1, 3)
    x = from_coords(coords, torch.zeros(coords.shape[0], 4), (height, width), 1, "torch")
    return float(SHM(SHM_CONFIGS[config]).macs(x)) / 1e9


def scratch_dir() -> str:
    """A temporary folder for written outputs (removed by the caller)."""
    return tempfile.mkdtemp(prefix="sparsemat-bench-")
