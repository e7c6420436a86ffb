"""One engine session per node or sequence: frame history, keyframe pre-roll, the whole pipeline.

Pipeline for one frame (paper §3, Eq. 2):

1. **Prior** at ~512p (``prior_size``): an external matte resampled, or a prior network.
2. **Maps** at full resolution: spatial band ``B`` of the upsampled prior, temporal change ``T``
   against the previous frame, active map ``M = B ∩ T`` (``M = B`` without history).
3. **SHM** refines the active pixels only, through the cascade ``0.25 / 0.5 / 1.0`` when asked
   for or when the frame is over the active-pixel budget.
4. **Blend** (Eq. 2): refinement inside ``M``, previous frame's alpha in ``B \\ T``, upsampled
   prior (or coarser cascade level) elsewhere.

History rule: temporal reuse only when the session's last frame is exactly ``frame − 1`` with the
same plate size and settings. Otherwise the session pre-rolls from the last keyframe
(``frame // keyframe_interval · keyframe_interval``, clamped to the source's first frame), so a
frame's pixels do not depend on how a sequence was split into chunks.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sparsemat.engine.budget import cascade_scales, default_budget
from sparsemat.engine.colour_bound import BOUND_MARGIN
from sparsemat.engine.colour_samples import colour_estimates, sample_levels, wants_colour_samples
from sparsemat.engine.frames import FrameInput, FrameSource
from sparsemat.engine.guided import guided_coefficients, wants_guided_prior
from sparsemat.engine.prior_memo import PriorMemo
from sparsemat.engine.refine import refine_sites
from sparsemat.engine.refine_memo import RefinementMemo
from sparsemat.engine.resize import downsample, resize_plane, upsample
from sparsemat.engine.result import FrameResult, FrameStats
from sparsemat.engine.soft_ramp import ramp_gate
from sparsemat.engine.sparsity import spatial_band, temporal_change
from sparsemat.errors import BudgetWarning, DeviceError, InputError, InputWarning, SettingsError
from sparsemat.priors.base import prior_input_size
from sparsemat.settings import Settings

log = logging.getLogger(__name__)

#: Smallest cascade scale tried when even 0.25 is over budget (below it the SHM sees mush).
MIN_RESCUE_SCALE = 0.06


def resolve_device(name: str) -> torch.device:
    """Turn the ``device`` knob into a torch device; ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "Device 'cuda' was requested but this machine has no usable CUDA GPU "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). "
            "Set the device knob to 'auto' or 'cpu'."
        )
    return torch.device(name)


@dataclass
class _History:
    frame: int
    size: tuple[int, int]
    key: str
    rgb: torch.Tensor  # [H, W, 3] float16, display sRGB
    alpha: torch.Tensor  # [H, W] float32


class Session:
    """Per-node engine state: settings, models, and the previous frame.

    Args:
        settings: validated engine settings.
        refiner: an SHM module; built from ``settings.model`` when omitted.
        prior: a prior object overriding ``settings.prior`` (tests, hosts with their own prior).
        reuse_refinement: keep the refiner's raw output of the last passes
            (:class:`~sparsemat.engine.refine_memo.RefinementMemo`), so that asking for the same frame again with
            only Refine strength, Soft-edge guard or Colour bound changed skips the network (the matte is identical
            to a recomputed one). For interactive sessions; a batch render sees each frame once.
    """

    def __init__(self, settings: Settings | None = None, refiner: Any = None, prior: Any = None,
                 reuse_refinement: bool = False) -> None:
        self.settings = settings or Settings()
        self.device = resolve_device(self.settings.device)
        self._prior_override = prior
        self._priors: dict[str, Any] = {}
        self._history: _History | None = None
        self._refiner_override = refiner.eval() if refiner is not None else None
        self._refiner = self._refiner_override
        self._backend: Any = None
        self._memo = RefinementMemo() if reuse_refinement else None
        self._prior_memo = PriorMemo() if reuse_refinement else None
        # (frame, prior key) whose prediction the network prior's recurrent state follows; None: a fresh state
        # (every place that sets None has just built or reset the prior)
        self._prior_pos: tuple[int, str] | None = None
        self.last_stats: FrameStats | None = None

    # ------------------------------------------------------------------ configuration
    @property
    def refiner(self) -> Any:
        """The SHM module (built lazily, in eval mode, on the session's device)."""
        if self._refiner is None:
            from sparsemat.builders import build_shm

            self._refiner = build_shm(self.settings.model, device=self.device)  # built in eval mode
        return self._refiner

    @property
    def backend(self) -> Any:
        """The sparse backend resolved from the ``backend`` knob for this device."""
        if self._backend is None:
            from sparsemat.sparse import get_backend

            self._backend = get_backend(self.settings.backend, self.device)
        return self._backend

    @property
    def budget(self) -> int:
        """Active pixels allowed in one SHM pass (knob, or derived from free memory)."""
        if self.settings.max_active_pixels > 0:
            return self.settings.max_active_pixels
        cfg = getattr(self.refiner, "cfg", None)
        per_site = float(getattr(cfg, "bytes_per_site", 3500.0))
        return default_budget(per_site, self.device)

    def update(self, settings: Settings) -> None:
        """Apply new knob values; history survives only if nothing pixel-affecting changed."""
        old = self.settings
        self.settings = settings
        if settings.model != old.model:
            self._refiner = self._refiner_override
        if settings.backend != old.backend or settings.device != old.device:
            self._backend = None
            self.device = resolve_device(settings.device)
            if settings.device != old.device:  # an injected refiner moves with the session; a built one is rebuilt
                self._refiner = self._refiner_override.to(self.device) if self._refiner_override is not None else None
        if self._memo is not None and (settings.model != old.model or settings.backend != old.backend
                                       or settings.device != old.device):
            self._memo.clear()  # outputs of another network, backend or device: never reused, so free them
        if self._prior_key_of(settings) != self._prior_key_of(old):
            self.reset()
            if self._prior_memo is not None:
                self._prior_memo.clear()  # outputs of another prior setup: never reused, so free them
        elif settings.pixel_key() != old.pixel_key():
            self._history = None  # a knob after the prior: the prior's state and outputs stay valid
        if settings.prior != old.prior or settings.prior_size != old.prior_size or settings.model != old.model \
                or settings.device != old.device:
            self._priors.clear()  # auto's choice depends on the model (LPN features), priors live on the device

    def reset(self) -> None:
        """Forget the frame history and any recurrent prior state."""
        self._history = None
        self._prior_pos = None
        for prior in self._priors.values():
            prior.reset()
        if self._prior_override is not None:
            self._prior_override.reset()

    @staticmethod
    def _prior_key_of(settings: Settings) -> str:
        """Everything that decides a network prior's output at a frame: which prior (the model too: ``auto`` follows
        a converted official SHM to the LPN), its resolution and device, and where its pre-roll starts."""
        return "|".join(str(v) for v in (settings.prior, settings.prior_size, settings.device, settings.model,
                                          settings.keyframe_interval))

    def _prior_key(self) -> str:
        return self._prior_key_of(self.settings)

    # ------------------------------------------------------------------ public API
    def render(self, frame: int, source: FrameSource) -> FrameResult:
        """Refine ``frame`` of ``source``, pre-rolling from the last keyframe when needed.

        Raises:
            InputError: the frame (not a pre-roll frame) cannot be read.
        """
        if self._needs_history(frame):
            if self.settings.temporal:
                if not self._history_continues(frame):  # Temporal reuse reads the previous matte: render them all
                    for f in range(self._preroll_start(frame, source.first_frame), frame):
                        try:
                            self.process(f, source(f))
                        except InputError as exc:  # a sequential render would have failed here too
                            log.warning("pre-roll frame %d unusable (%s); history restarts after it", f, exc)
                            self._history = None
            elif self._prior_pos != (frame - 1, self._prior_key()) and not self._prior_memo_holds(frame, source):
                self._preroll_prior(self._preroll_start(frame, source.first_frame), frame, source)
        try:
            return self.process(frame, source(frame))
        except InputError:
            self._history = None
            raise

    def _prior_memo_holds(self, frame: int, source: FrameSource) -> bool:
        """The viewer's memo has the prior of ``frame`` (then no pre-roll is needed to get it)."""
        if self._prior_memo is None or not len(self._prior_memo) or self._needs_lpn_context():
            return False
        try:
            inp = source(frame)
        except InputError:
            return False  # process() reports it
        with torch.inference_mode():
            _, lr_rgb = self._plate_tensors(inp)
            return self._prior_memo.lookup(frame, self._prior_key(), lr_rgb) is not None

    def _preroll_prior(self, start: int, frame: int, source: FrameSource) -> None:
        """Run only the recurrent prior over ``start .. frame - 1`` (Temporal reuse off: the earlier mattes are not
        read, so refining them would be wasted; the prior's state is what carries over)."""
        for f in range(start, frame):
            try:
                inp = source(f)
                with torch.inference_mode():
                    _, lr_rgb = self._plate_tensors(inp)
                    self._prior(inp, lr_rgb, inp.size, f)
            except InputError as exc:  # a sequential render would have failed here too
                log.warning("pre-roll frame %d unusable (%s); the prior restarts after it", f, exc)
                prior = self._current_prior_object()
                if prior is not None:
                    prior.reset()
                self._prior_pos = None

    def process(self, frame: int, inp: FrameInput) -> FrameResult:
        """Refine one frame given directly; uses history only if it holds exactly ``frame − 1``."""
        with torch.inference_mode():
            return self._process(frame, inp)

    # ------------------------------------------------------------------ history rules
    def _is_keyframe(self, frame: int) -> bool:
        n = self.settings.keyframe_interval
        return n > 0 and frame % n == 0

    def _needs_history(self, frame: int) -> bool:
        if self._is_keyframe(frame):
            return False
        if self.settings.temporal:
            return True
        prior = self._current_prior_object()
        if prior is None and self.settings.prior != "input":
            from sparsemat.priors import choose_prior

            # not built yet (first frame of a fresh session): a recurrent network prior needs its pre-roll too;
            # the LPN is not recurrent, so it is not built just to be asked
            if choose_prior(self.settings.prior, has_matte=False)[0] != "lpn":
                prior = self._network_prior(self.settings.prior)[0]
        return bool(getattr(prior, "recurrent", False))

    def _history_continues(self, frame: int) -> bool:
        h = self._history
        return h is not None and h.frame == frame - 1 and h.key == self.settings.pixel_key()

    def _preroll_start(self, frame: int, first: int) -> int:
        n = self.settings.keyframe_interval
        start = (frame // n) * n if n > 0 else first
        return max(start, first, frame - 10_000)

    # ------------------------------------------------------------------ priors
    def _current_prior_object(self) -> Any:
        if self._prior_override is not None:
            return self._prior_override
        return self._priors.get("net")

    def _network_prior(self, name: str) -> tuple[Any, str]:
        if self._prior_override is not None:
            return self._prior_override, getattr(self._prior_override, "name", "custom")
        if "net" not in self._priors:
            from sparsemat.priors import resolve_prior

            if name == "auto" and self._needs_lpn_context():
                prior, reason = resolve_prior("lpn", has_matte=False, device=self.device)
                reason = f"auto: the model reads the LPN's features; {reason}"
            else:
                prior, reason = resolve_prior(name, has_matte=False, device=self.device)
            self._priors["net"] = prior
            self._priors_reason = f"{getattr(prior, 'name', name)} ({reason})"
        return self._priors["net"], self._priors_reason

    def _needs_lpn_context(self) -> bool:
        """The refiner is a converted official SHM whose Masked-SE reads the LPN's ``dec16x`` features."""
        return bool(getattr(self.refiner, "uses_prior_context", False))

    def _check_lpn_context(self, frame: int, use_matte: bool) -> None:
        """Refuse a prior that cannot feed a refiner trained on the official LPN's features."""
        if self._prior_override is not None or not self._needs_lpn_context():
            return
        if use_matte or self.settings.prior not in ("auto", "lpn"):
            what = "a matte input" if use_matte else f"the '{self.settings.prior}' prior"
            raise SettingsError(
                "prior", self.settings.prior,
                f"frame {frame}: the model '{self.settings.model}' is a converted official SHM that reads the "
                f"official LPN's features, which {what} does not provide; set the prior knob to 'lpn' (with the "
                "converted lpn.pt installed as sparsemat/weights/lpn.pt), or use the 'lite' model",
            )

    def _plate_tensors(self, inp: FrameInput) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rgb [H, W, 3], lr_rgb [1, 3, h, w])`` on the device: the plate, and the prior's input at
        :func:`prior_input_size` (desqueezed by the pixel aspect), float display sRGB in [0, 1]."""
        height, width = inp.size
        rgb_hwc = torch.from_numpy(np.ascontiguousarray(inp.rgb)).to(self.device)
        lr_size = prior_input_size(height, width, self.settings.prior_size, inp.pixel_aspect)
        return rgb_hwc, downsample(rgb_hwc.permute(2, 0, 1)[None], lr_size).clamp_(0, 1)

    def _prior(
        self, inp: FrameInput, lr_rgb: torch.Tensor, size: tuple[int, int], frame: int
    ) -> tuple[torch.Tensor, torch.Tensor, str, bool]:
        """Return ``(lr_prior [1,1,h,w], prior_hr [H,W], description, reused)``; ``reused``: from the memo."""
        name = self.settings.prior
        use_matte = self._prior_override is None and (name == "input" or (name == "auto" and inp.matte is not None))
        self._check_lpn_context(frame, use_matte)
        if use_matte:
            if inp.matte is None:
                raise InputError(
                    f"Frame {frame}: the prior knob is 'input' but no matte was given for this frame. "
                    "Connect the Matte input (or pass --prior), or set the prior knob to auto."
                )
            if "net" in self._priors:  # a network prior's state must not skip over this frame (auto)
                self._priors["net"].reset()
                self._prior_pos = None
            matte = torch.from_numpy(np.ascontiguousarray(inp.matte, dtype=np.float32)).to(self.device)
            matte = matte.nan_to_num(0.0).clamp_(0.0, 1.0)
            lr_prior = resize_plane(matte, (int(lr_rgb.shape[-2]), int(lr_rgb.shape[-1])))[None, None].clamp_(0, 1)
            prior_hr = resize_plane(matte, size).clamp_(0, 1)
            why = "input (matte given)" if name == "input" else "input (auto: matte given)"
            return lr_prior, prior_hr, why, False
        prior, why = self._network_prior(name)
        key = self._prior_key()
        continues = self._prior_pos == (frame - 1, key) and not self._is_keyframe(frame)
        recurrent = bool(getattr(prior, "recurrent", False))
        # a recurrent prior whose state continues costs one run: run it, so playback keeps its state moving; a
        # refiner reading the LPN's features (official checkpoints) needs this frame's, which only a run leaves
        usable = self._prior_memo is not None and not (recurrent and continues) and not self._needs_lpn_context()
        hit = self._prior_memo.lookup(frame, key, lr_rgb) if usable and self._prior_memo is not None else None
        if hit is not None:
            lr_prior = hit.to(self.device)
        else:
            if not continues and self._prior_pos is not None:  # None: fresh (built, or reset when set to None)
                prior.reset()
            lr_prior = prior.predict(lr_rgb).to(self.device).float().clamp_(0, 1)
            self._prior_pos = (frame, key)
            if self._prior_memo is not None:
                self._prior_memo.store(frame, key, lr_rgb, lr_prior)
        prior_hr = upsample(lr_prior, size)[0, 0].clamp_(0, 1)
        return lr_prior, prior_hr, why, hit is not None

    # ------------------------------------------------------------------ the pipeline
    def _process(self, frame: int, inp: FrameInput) -> FrameResult:
        s = self.settings
        stats = FrameStats(frame=frame, budget=self.budget)
        size = inp.size
        height, width = size
        timer = _StageTimer(stats.stage_seconds, self.device)

        # ---- history decision
        hist = self._history
        use_history = (
            s.temporal and not self._is_keyframe(frame) and hist is not None and self._history_continues(frame)
        )
        if use_history and hist is not None and hist.size != size:  # reuse would have applied: say why it did not
            msg = (
                f"Frame {frame} is {width}x{height} but frame {frame - 1} was {hist.size[1]}x{hist.size[0]}: "
                "frame history was reset and this frame was computed on its own."
            )
            warnings.warn(msg, InputWarning, stacklevel=2)
            stats.warnings.append(msg)
            use_history = False
        if hist is not None and hist.size != size:
            use_history = False
        stats.keyframe = not use_history

        # ---- prior (a recurrent one restarts wherever its state does not follow frame - 1: see _prior)
        with timer("prior"):
            rgb_hwc, lr_rgb = self._plate_tensors(inp)
            rgb_chw, lr_size = rgb_hwc.permute(2, 0, 1)[None], (int(lr_rgb.shape[-2]), int(lr_rgb.shape[-1]))
            lr_prior, prior_hr, stats.prior_name, stats.prior_reused = self._prior(inp, lr_rgb, size, frame)

        # ---- maps at full resolution
        with timer("maps"):
            band = spatial_band(prior_hr, s.kernel_size)
            changed = None
            if use_history:
                assert hist is not None
                changed = temporal_change(rgb_hwc, hist.rgb, s.threshold, s.kernel_size)
            active_full = band & changed if changed is not None else band
            stats.band_pixels = int(band.sum())

        # ---- cascade of SHM passes
        scales = cascade_scales(s.cascade_levels)
        n_full = int(active_full.sum())
        if len(scales) < 3 and n_full > stats.budget:
            msg = (
                f"Frame {frame}: {n_full:,} active pixels exceed the budget of {stats.budget:,}; "
                "the frame went through the 0.25/0.5/1.0 cascade, which softens fine detail (in our validation up to "
                "12 % more matte error on average, up to twice as much where the prior was already close). Raise "
                "Active-pixel budget or lower Edge width (kernel) to refine it in one pass."
            )
            stats.warnings.append(msg)
            scales = cascade_scales(3)

        alpha = prior_hr
        last_scale: float | None = None
        active_final = torch.zeros_like(band)
        gmacs = 0.0
        gate = ramp_gate(lr_prior, s.soft_edge_guard) if s.soft_edge_guard > 0.0 else None  # soft-edge guard
        for i, scale in enumerate(scales):
            final = scale == 1.0
            with timer("maps"):
                if final:
                    # after coarse levels, refine the upsampled cascade result at the plate's own size
                    cur = alpha if tuple(alpha.shape) == size else upsample(alpha[None, None], size)[0, 0].clamp(0, 1)
                    lvl_size = size
                    lvl_band = band if last_scale is None else spatial_band(cur, s.kernel_size)
                    mask = lvl_band & changed if changed is not None else lvl_band
                else:
                    lvl_size = (max(8, round(height * scale)), max(8, round(width * scale)))
                    cur = resize_plane(alpha, lvl_size)
                    lvl_band = mask = spatial_band(cur, s.kernel_size)
                n = int(mask.sum())
            if n > stats.budget:
                if last_scale is not None:
                    msg = (
                        f"Frame {frame}: {n:,} active pixels at scale {scale:g} exceed the budget of "
                        f"{stats.budget:,}; the matte was refined up to scale {last_scale:g} and upsampled."
                    )
                    stats.warnings.append(msg)
                    break
                rescue = self._rescue_scale(scale, n, stats.budget)
                if rescue is None:
                    msg = (
                        f"Frame {frame}: even at scale {scale:g} {n:,} pixels exceed the budget of "
                        f"{stats.budget:,}; the frame shows the prior only. Raise the budget or lower the "
                        "kernel size."
                    )
                    stats.warnings.append(msg)
                    break
                scale, final = rescue, False
                with timer("maps"):
                    lvl_size = (max(8, round(height * scale)), max(8, round(width * scale)))
                    cur = resize_plane(alpha, lvl_size)
                    lvl_band = mask = spatial_band(cur, s.kernel_size)
                    n = int(mask.sum())
                if n > stats.budget:  # band does not shrink with the scale (rare); give up cleanly
                    stats.warnings.append(f"Frame {frame}: over budget at every scale; the prior is shown.")
                    break
                stats.warnings.append(
                    f"Frame {frame}: over budget even at scale {scales[0]:g}; refined at scale {scale:.3g} "
                    "and upsampled (detail is softer than a full-resolution pass)."
                )
                scales = [scale]  # stop after this pass
            with timer("shm"):
                if final:
                    lvl_rgb_hwc = rgb_hwc
                else:
                    lvl_rgb_hwc = downsample(rgb_chw, lvl_size)[0].permute(1, 2, 0).clamp_(0, 1)
                # The refiner is handed its prior as it was trained to see one: a low-res matte (context encoder,
                # colour samples) and, for guided-input refiners, the guided upsampling of it (also for a
                # full-resolution matte input). After a coarse level, the matte refined so far is that prior,
                # resampled to the prior's size: refining it against the frame's original low-res prior instead
                # mixes two mattes the refiner never saw together (measured: 12 % more matte error at 2 levels,
                # 25 % at 3; docs/experiments.md, "Twenty-second session").
                lvl_lr_prior = lr_prior if last_scale is None else resize_plane(cur, lr_size)[None, None].clamp(0, 1)
                guide = guided_coefficients(lr_rgb, lvl_lr_prior) if wants_guided_prior(self.refiner) else None
                colour_est = (colour_estimates(lr_rgb, lvl_lr_prior, sample_levels(self.refiner))
                              if wants_colour_samples(self.refiner) else None)
                hits = self._memo.hits if self._memo is not None else 0
                values, macs = refine_sites(
                    self.refiner, self.backend, lvl_rgb_hwc, cur, mask, lr_rgb, lvl_lr_prior, ctx=self._ctx(),
                    guide=guide, colour_est=colour_est, strength=s.refine_strength, gate=gate,
                    bound_margin=BOUND_MARGIN if s.colour_bound else None, memo=self._memo,
                )
                gmacs += macs / 1e9
                if self._memo is not None and self._memo.hits > hits:
                    stats.shm_reused += 1
            with timer("blend"):
                out = cur.clone()
                if final and changed is not None:
                    assert hist is not None
                    reuse = lvl_band & ~changed  # in the band but unchanged: previous frame's matte
                    out[reuse] = hist.alpha[reuse]
                    stats.temporal_reused = True
                out[mask] = values
                alpha = out
            stats.cascade_scales.append(float(scale))
            last_scale = scale
            if final:
                active_final = mask
            if i == len(scales) - 1 or scale == scales[-1]:
                break

        with timer("blend"):
            if tuple(alpha.shape) != size:
                alpha = upsample(alpha[None, None], size)[0, 0]
            alpha = alpha.clamp(0.0, 1.0)

        for msg in stats.warnings:
            if "budget" in msg:
                warnings.warn(msg, BudgetWarning, stacklevel=2)
        stats.active_pixels = int(active_final.sum())
        stats.active_share = stats.active_pixels / float(height * width)
        stats.shm_gmacs = gmacs
        # the history keeps its own copy: the returned array must not alias it (callers may edit it in place)
        self._history = _History(frame, size, s.pixel_key(), rgb_hwc.to(torch.float16), alpha.clone())
        self.last_stats = stats
        return FrameResult(
            alpha=alpha.float().cpu().numpy(),
            prior=prior_hr.float().cpu().numpy(),
            spatial=band.cpu().numpy(),
            temporal=changed.cpu().numpy() if changed is not None else None,
            active=active_final.cpu().numpy(),
            stats=stats,
        )

    def _ctx(self) -> torch.Tensor | None:
        """LPN context features for refiners trained on them (official checkpoints), else None."""
        if not getattr(self.refiner, "uses_prior_context", False):
            return None
        prior = self._current_prior_object()
        return getattr(prior, "last_ctx", None)

    @staticmethod
    def _rescue_scale(scale: float, active: int, budget: int) -> float | None:
        """Scale at which a band of ``active`` pixels at ``scale`` should fit ``budget`` (band ∝ scale)."""
        # A thin band's pixel count shrinks linearly with the scale, a filled area quadratically;
        # plan for the linear (worst) case with 10 % headroom.
        rescue = scale * 0.9 * budget / active
        return rescue if rescue >= MIN_RESCUE_SCALE else None


class _StageTimer:
    """Accumulates wall time per stage into a dict (synchronising CUDA for honest figures)."""

    def __init__(self, into: dict[str, float], device: torch.device) -> None:
        self.into = into
        self.device = device
        self._stage = ""
        self._t0 = 0.0

    def __call__(self, stage: str) -> _StageTimer:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.into[self._stage] = self.into.get(self._stage, 0.0) + time.perf_counter() - self._t0
