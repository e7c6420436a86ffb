"""Engine behaviour: maps, Eq. 2 blend, history rules, keyframe pre-roll, cascade and budget."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sparsemat import InputError, Settings
from sparsemat.builders import SHM_CONFIGS
from sparsemat.engine import ArraySource, FrameInput, Session
from sparsemat.engine.sparsity import dilate, spatial_band, temporal_change
from sparsemat.models.shm import SHM

H, W = 72, 104


def _disc_alpha(cx: float, cy: float, r: float, h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    return np.clip(r - d + 0.5, 0.0, 1.0).astype(np.float32)  # 1 px anti-aliased edge


def _sequence(n: int = 12, moving: bool = True, first: int = 1) -> ArraySource:
    """A soft disc moving over a static textured background, with a rough (blurred) matte."""
    rng = np.random.default_rng(7)
    bg = rng.uniform(0.1, 0.9, size=(H, W, 3)).astype(np.float32)
    fg = np.array([0.9, 0.6, 0.3], np.float32)
    frames = {}
    for i in range(n):
        f = first + i
        cx = 40.0 + (2.0 * i if moving else 0.0)
        alpha = _disc_alpha(cx, 36.0, 18.0)
        rgb = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        # rough prior: the GT shrunk 4x and blown back up (a keyer-like soft matte)
        a = torch.from_numpy(alpha)[None, None]
        small = F.interpolate(a, scale_factor=0.25, mode="area")
        matte = F.interpolate(small, size=(H, W), mode="bilinear", align_corners=False)[0, 0].numpy()
        frames[f] = FrameInput(rgb=rgb.astype(np.float32), matte=matte)
    return ArraySource(frames)


_SHM: SHM | None = None


def _session(**knobs: object) -> Session:
    """A session on random ``lite`` weights (the same weights for every session of a test run)."""
    global _SHM
    if _SHM is None:
        torch.manual_seed(0)
        _SHM = SHM(SHM_CONFIGS["lite"]).eval()
    settings = Settings(**{"prior": "input", "device": "cpu", "backend": "torch", **knobs})  # type: ignore[arg-type]
    return Session(settings, refiner=_SHM)


# ---------------------------------------------------------------- maps
def test_dilate_matches_naive_max_pool() -> None:
    rng = np.random.default_rng(0)
    for shape, density in (((31, 45), 0.97), ((7, 90), 0.9), ((64, 3), 0.8)):
        m = torch.from_numpy(rng.random(shape) > density)
        m[0, -1] = True  # a site on the image border
        for k in (1, 3, 5, 7, 15, 31, 63):
            ref = F.max_pool2d(m.float()[None, None], k, stride=1, padding=k // 2)[0, 0] > 0.5
            assert torch.equal(dilate(m, k), ref), (shape, k)


def test_spatial_band_thresholds_and_width() -> None:
    prior = torch.zeros(20, 40)
    prior[:, 20:] = 1.0
    prior[:, 20] = 0.5  # one transition column
    band = spatial_band(prior, 5)
    cols = band.any(0).nonzero()[:, 0]
    assert cols.min().item() == 18 and cols.max().item() == 22  # 0.5 column ± 2
    assert not spatial_band(torch.ones(10, 10), 15).any()


def test_temporal_change_threshold_is_mean_rgb_difference() -> None:
    a = torch.zeros(16, 16, 3)
    b = a.clone()
    b[4:12, 4:12, 0] = 0.3  # mean over RGB = 0.1
    assert temporal_change(b, a, 0.05, 1)[8, 8]
    assert not temporal_change(b, a, 0.2, 1).any()
    # a single noisy pixel is averaged away by the 3x3 box
    c = a.clone()
    c[2, 2] = 0.3
    assert not temporal_change(c, a, 0.05, 1).any()


# ---------------------------------------------------------------- Eq. 2 and history
def test_first_frame_blend_uses_prior_outside_band() -> None:
    src = _sequence(1)
    res = _session().render(1, src)
    assert res.alpha.shape == (H, W) and res.alpha.dtype == np.float32
    assert res.temporal is None and res.stats.keyframe and not res.stats.temporal_reused
    outside = ~res.spatial
    np.testing.assert_array_equal(res.alpha[outside], np.clip(res.prior[outside], 0, 1))
    assert np.array_equal(res.active, res.spatial)
    assert res.stats.active_pixels == int(res.spatial.sum()) > 0
    assert 0.0 < res.stats.active_share < 1.0
    assert set(res.stats.stage_seconds) >= {"prior", "maps", "shm", "blend"}
    assert res.stats.shm_gmacs > 0


def test_locked_off_sequence_reuses_previous_alpha() -> None:
    src = _sequence(3, moving=False)
    # a small change in one corner of the plate only
    src.frames[2].rgb = src.frames[1].rgb.copy()
    src.frames[2].rgb[0:10, 0:10] += 0.2
    sess = _session(keyframe_interval=0, temporal=True)
    r1 = sess.render(1, src)
    r2 = sess.render(2, src)
    assert r2.stats.temporal_reused and not r2.stats.keyframe
    assert r2.stats.active_pixels < r1.stats.active_pixels  # spatio-temporal < spatial only
    reuse = r2.spatial & ~r2.temporal  # type: ignore[operator]
    assert reuse.any()
    np.testing.assert_array_equal(r2.alpha[reuse], r1.alpha[reuse])


def test_frame_jump_resets_history_and_size_change_warns() -> None:
    src = _sequence(6)
    sess = _session(keyframe_interval=0, temporal=True)
    sess.process(1, src(1))
    jumped = sess.process(4, src(4))  # process() never pre-rolls: a jump is a cold frame
    assert jumped.stats.keyframe and jumped.temporal is None
    sess.process(5, src(5))
    small = FrameInput(rgb=src(6).rgb[:40, :60].copy(), matte=src(6).matte)
    with pytest.warns(UserWarning, match="history was reset"):
        res = sess.process(6, small)
    assert res.stats.keyframe and res.alpha.shape == (40, 60)


@pytest.mark.parametrize("interval", [4, 5])
def test_chunked_render_equals_sequential(interval: int) -> None:
    src = _sequence(12)
    seq = _session(keyframe_interval=interval, temporal=True)
    full = [seq.render(f, src).alpha for f in range(1, 13)]
    chunk_a, chunk_b = (_session(keyframe_interval=interval, temporal=True) for _ in range(2))
    parts = [chunk_a.render(f, src).alpha for f in range(1, 7)] + [chunk_b.render(f, src).alpha for f in range(7, 13)]
    for f, (x, y) in enumerate(zip(full, parts, strict=True), start=1):
        assert np.array_equal(x, y), f"frame {f} differs between sequential and chunked renders"
    # and temporal reuse really happened inside the chunks
    assert chunk_b.last_stats is not None and chunk_b.last_stats.temporal_reused == (12 % interval != 0)


def test_keyframes_are_spatial_only() -> None:
    src = _sequence(5)
    sess = _session(keyframe_interval=4, temporal=True)
    stats = [sess.render(f, src).stats for f in range(1, 6)]
    assert [s.keyframe for s in stats] == [True, False, False, True, False]


def test_temporal_reuse_is_off_by_default() -> None:
    """Measured: reuse cost matte accuracy and steadiness on 15 of 16 test sequences (docs/method.md §3), so by default
    each frame is refined on its own: no frame reuses history, and a frame comes out the same whether the session
    rendered the frames before it or not."""
    src = _sequence(4, moving=False)
    sess = _session(keyframe_interval=0)
    results = [sess.render(f, src) for f in range(1, 5)]
    assert all(r.stats.keyframe and not r.stats.temporal_reused and r.temporal is None for r in results)
    assert np.array_equal(results[-1].alpha, _session(keyframe_interval=0).render(4, src).alpha)
    reusing = _session(keyframe_interval=0, temporal=True)
    assert [reusing.render(f, src).stats.temporal_reused for f in range(1, 5)] == [False, True, True, True]


@pytest.mark.parametrize("temporal", [False, True])
def test_a_render_reads_earlier_frames_exactly_when_the_settings_say_so(temporal: bool) -> None:
    """Hosts copy input frames by :meth:`Settings.reads_earlier_frames`; the engine must not read any other."""
    src = _sequence(7)
    read: list[int] = []

    class Recording(ArraySource):
        def __call__(self, frame: int) -> FrameInput:
            read.append(frame)
            return super().__call__(frame)

    sess = _session(keyframe_interval=4, temporal=temporal)
    sess.render(7, Recording(src.frames))
    assert sess.settings.reads_earlier_frames(has_matte=True) == temporal
    assert read == ([4, 5, 6, 7] if temporal else [7])


def test_missing_matte_for_input_prior_names_the_frame() -> None:
    sess = _session()
    with pytest.raises(InputError, match="Frame 3.*no matte"):
        sess.process(3, FrameInput(rgb=np.zeros((H, W, 3), np.float32)))


# ---------------------------------------------------------------- cascade and budget
def test_cascade_levels_run_coarse_to_fine() -> None:
    res = _session(cascade_levels=3).render(1, _sequence(1))
    assert res.stats.cascade_scales == [0.25, 0.5, 1.0]
    assert res.alpha.shape == (H, W) and np.isfinite(res.alpha).all()


def test_over_budget_goes_through_cascade_without_crashing() -> None:
    src = _sequence(1)
    n_band = _session().render(1, src).stats.band_pixels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _session(max_active_pixels=max(1, n_band // 3)).render(1, src)
    assert res.stats.cascade_scales[0] == 0.25  # escalated to the cascade
    assert res.stats.warnings and any("budget" in str(w.message) for w in caught)
    assert any("softens fine detail" in w and "Raise Active-pixel budget" in w for w in res.stats.warnings)
    assert res.alpha.shape == (H, W) and np.isfinite(res.alpha).all()


def test_budget_too_small_for_any_scale_returns_prior_with_warning() -> None:
    src = _sequence(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _session(max_active_pixels=1).render(1, src)
    assert res.stats.cascade_scales == []
    assert any("prior only" in w or "prior is shown" in w for w in res.stats.warnings)
    np.testing.assert_allclose(res.alpha, res.prior, atol=1e-6)


# ---------------------------------------------------------------- prior choice inside the session
class _CountingPrior:
    """A recurrent network prior that records its calls (stands in for RVM)."""

    name = "fake"
    recurrent = True

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.last_ctx = None

    def reset(self) -> None:
        self.calls.append("reset")

    def predict(self, lr_rgb: torch.Tensor) -> torch.Tensor:
        self.calls.append("predict")
        return torch.full((1, 1, *lr_rgb.shape[-2:]), 0.5)


def _with_network_prior(monkeypatch: pytest.MonkeyPatch, prior: object, resolved_as: list[str]) -> None:
    import sparsemat.priors as priors

    def fake_resolve(name: str, has_matte: bool, device: object = "cpu") -> tuple[object, str]:
        resolved_as.append(name)
        return prior, f"{name}: stand-in"

    monkeypatch.setattr(priors, "resolve_prior", fake_resolve)


def test_auto_prior_report_names_the_network_and_resets_it_over_matte_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    prior, resolved = _CountingPrior(), []
    _with_network_prior(monkeypatch, prior, resolved)
    sess = _session(prior="auto", temporal=False, keyframe_interval=0)
    src = _sequence(4)
    rgb = {f: src(f).rgb for f in range(1, 5)}
    names = []
    for f, matte in ((1, None), (2, None), (3, src(3).matte), (4, None)):
        names.append(sess.process(f, FrameInput(rgb=rgb[f], matte=matte)).stats.prior_name)
    assert names[0] == "fake (auto: stand-in)" and names[2].startswith("input")
    # frame 4 must not continue frame 2's recurrent state across the matte frame 3
    assert prior.calls == ["predict", "predict", "reset", "predict"]


def test_official_shm_needs_the_lpn_prior(monkeypatch: pytest.MonkeyPatch) -> None:
    """A converted official SHM reads the LPN's features: another prior is refused, auto picks the LPN."""
    from sparsemat import SettingsError

    torch.manual_seed(0)
    official = SHM(SHM_CONFIGS["lite"]).eval()
    official.uses_prior_context = True  # type: ignore[assignment]  # what build_shm sets for lpn_ctx checkpoints
    frame = _sequence(1)(1)
    with pytest.raises(SettingsError, match="frame 1.*official LPN's features.*a matte input.*'lpn'"):
        Session(Settings(prior="input", device="cpu", backend="torch"), refiner=official).process(1, frame)
    with pytest.raises(SettingsError, match="the 'rvm' prior"):
        Session(Settings(prior="rvm", device="cpu", backend="torch"), refiner=official).process(
            1, FrameInput(rgb=frame.rgb))
    prior, resolved = _CountingPrior(), []
    _with_network_prior(monkeypatch, prior, resolved)
    res = Session(Settings(prior="auto", device="cpu", backend="torch"), refiner=official).process(
        1, FrameInput(rgb=frame.rgb))
    assert resolved == ["lpn"] and res.stats.prior_name.startswith("fake (auto: the model reads the LPN's features")


def test_site_macs_equals_the_count_of_a_refine_pass() -> None:
    """Benchmarks time refine_sites without MAC bookkeeping and count it apart: the two counts must agree."""
    from sparsemat.engine.refine import refine_sites, site_macs
    from sparsemat.sparse import get_backend

    sess = _session()
    rng = np.random.default_rng(1)
    mask = torch.from_numpy(rng.random((40, 56)) < 0.3)
    rgb = torch.from_numpy(rng.random((40, 56, 3), dtype=np.float32))
    prior = torch.from_numpy(rng.random((40, 56), dtype=np.float32))
    lr_rgb, lr_prior = rgb.permute(2, 0, 1)[None], prior[None, None]
    for name in ("torch", "dense"):
        backend = get_backend(name, "cpu")
        values, counted = refine_sites(sess.refiner, backend, rgb, prior, mask, lr_rgb, lr_prior)
        quiet, zero = refine_sites(sess.refiner, backend, rgb, prior, mask, lr_rgb, lr_prior, count_macs=False)
        assert counted > 0 and zero == 0.0 and torch.equal(values, quiet)
        assert site_macs(sess.refiner, backend, mask) == counted


def test_cascade_full_resolution_pass_sees_full_resolution_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pass gets plate, prior and mask at one size; the last cascade pass is the plate's own size, also for
    a frame with history that went over budget (it used to refine the coarse grid and crash on frame 2)."""
    import sparsemat.engine.session as session_mod

    real = session_mod.refine_sites
    calls: list[tuple[tuple[int, ...], ...]] = []

    def spy(refiner, backend, rgb_hwc, prior, mask, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((tuple(rgb_hwc.shape[:2]), tuple(prior.shape), tuple(mask.shape)))
        return real(refiner, backend, rgb_hwc, prior, mask, *args, **kwargs)

    monkeypatch.setattr(session_mod, "refine_sites", spy)
    res = _session(cascade_levels=3).render(1, _sequence(1))
    assert res.stats.cascade_scales == [0.25, 0.5, 1.0]
    assert all(a == b == c for a, b, c in calls) and calls[-1][0] == (H, W)
    assert int(res.active.sum()) == res.stats.active_pixels  # the overlay shows what the last pass refined

    calls.clear()  # a cascade frame with temporal history: the full-resolution pass meets the change map
    sess = _session(cascade_levels=2, keyframe_interval=0, temporal=True)
    results = [sess.render(f, _sequence(3)) for f in (1, 2)]
    assert results[1].stats.cascade_scales == [0.5, 1.0] and not results[1].stats.keyframe
    assert results[1].stats.temporal_reused and all(a == b == c for a, b, c in calls)


def test_cascade_levels_hand_the_refiner_the_matte_refined_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a coarse level, the refiner's low-res prior (context, colour samples) and its guided prior feature
    come from the matte refined so far, resampled to the prior's size, not from the frame's original prior."""
    import sparsemat.engine.session as session_mod
    from sparsemat.engine.guided import guided_coefficients
    from sparsemat.engine.resize import resize_plane

    real = session_mod.refine_sites
    calls: list[dict[str, torch.Tensor]] = []

    def spy(refiner, backend, rgb_hwc, prior, mask, lr_rgb, lr_prior, **kwargs):  # type: ignore[no-untyped-def]
        guide = kwargs["guide"]
        calls.append({"prior": prior.clone(), "lr_rgb": lr_rgb, "lr_prior": lr_prior.clone(),
                      "a": guide[0], "b": guide[1]})
        return real(refiner, backend, rgb_hwc, prior, mask, lr_rgb, lr_prior, **kwargs)

    monkeypatch.setattr(session_mod, "refine_sites", spy)
    _session(cascade_levels=1).render(1, _sequence(1))
    first = calls.pop()["lr_prior"]  # the frame's own low-res prior, as one full-resolution pass gets it
    lr_size = (int(first.shape[-2]), int(first.shape[-1]))
    res = _session(cascade_levels=3).render(1, _sequence(1))
    assert res.stats.cascade_scales == [0.25, 0.5, 1.0] and len(calls) == 3
    assert torch.equal(calls[0]["lr_prior"], first)  # the coarsest level refines the frame's own prior
    for call in calls[1:]:
        handed = resize_plane(call["prior"], lr_size)[None, None].clamp(0, 1)
        assert torch.allclose(call["lr_prior"], handed, atol=1e-6)
        assert float((call["lr_prior"] - first).abs().max()) > 1e-3  # the coarse levels changed the matte
        a, b = guided_coefficients(call["lr_rgb"], handed)
        assert torch.allclose(call["a"], a, atol=1e-6) and torch.allclose(call["b"], b, atol=1e-6)


def test_recurrent_prior_preroll_on_a_fresh_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk starting mid-sequence pre-rolls a recurrent network prior even before the prior was ever built."""
    prior, resolved = _CountingPrior(), []
    _with_network_prior(monkeypatch, prior, resolved)
    src = _sequence(8)
    frames = {f: FrameInput(rgb=src(f).rgb) for f in range(1, 9)}
    sess = _session(prior="auto", temporal=False)
    sess.render(6, ArraySource(frames))
    assert prior.calls.count("predict") == 6  # frames 1-5 pre-rolled, then 6


class _EmaPrior:
    """A recurrent prior whose output depends on every frame since its reset (an exponential average of luminance)."""

    name = "ema"
    recurrent = True

    def __init__(self) -> None:
        self.state: torch.Tensor | None = None
        self.predicted = 0

    def reset(self) -> None:
        self.state = None

    def predict(self, lr_rgb: torch.Tensor) -> torch.Tensor:
        self.predicted += 1
        lum = lr_rgb.mean(dim=1, keepdim=True)
        self.state = lum if self.state is None else 0.6 * self.state + 0.4 * lum
        return torch.sigmoid((self.state - 0.5) * 12.0)


def test_prior_only_preroll_gives_the_sequential_pixels_without_refining_earlier_frames(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Temporal reuse off: a chunk (or the viewer) starting mid-interval runs only the recurrent prior over the
    frames since the keyframe, and frame 7 comes out bit-identical to a sequential render's."""
    src = _sequence(12)
    frames = {f: FrameInput(rgb=src(f).rgb) for f in range(1, 13)}
    seq_prior = _EmaPrior()
    _with_network_prior(monkeypatch, seq_prior, [])
    seq = _session(prior="auto", temporal=False, keyframe_interval=4)
    full = {f: seq.render(f, ArraySource(frames)).alpha for f in range(1, 13)}

    chunk_prior = _EmaPrior()
    _with_network_prior(monkeypatch, chunk_prior, [])
    chunk = _session(prior="auto", temporal=False, keyframe_interval=4)
    refined: list[int] = []
    real = chunk._process
    monkeypatch.setattr(chunk, "_process", lambda f, inp: refined.append(f) or real(f, inp))
    assert np.array_equal(chunk.render(7, ArraySource(frames)).alpha, full[7])
    assert refined == [7] and chunk_prior.predicted == 4  # frames 4-6 through the prior only, then 7


def test_the_viewer_reuses_the_prior_when_a_later_knob_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A knob the prior does not read (edge width here) changed on frame 7: no pre-roll, no prior run, and the same
    matte as a fresh render with that knob."""
    src = _sequence(8)
    frames = ArraySource({f: FrameInput(rgb=src(f).rgb) for f in range(1, 9)})
    prior = _EmaPrior()
    _with_network_prior(monkeypatch, prior, [])
    viewer = Session(Settings(prior="auto", device="cpu", backend="torch", temporal=False), refiner=_session().refiner,
                     reuse_refinement=True)
    first = viewer.render(7, frames)
    assert not first.stats.prior_reused and prior.predicted == 7  # frames 1-6 pre-rolled (no keyframe before 8)
    viewer.update(viewer.settings.replace(kernel_size=21))
    again = viewer.render(7, frames)
    assert again.stats.prior_reused and prior.predicted == 7  # nothing ran for the prior
    fresh_prior = _EmaPrior()
    _with_network_prior(monkeypatch, fresh_prior, [])
    fresh = _session(prior="auto", temporal=False, kernel_size=21).render(7, frames)
    assert np.array_equal(again.alpha, fresh.alpha)
    viewer.render(8, frames)  # stepping on continues the prior's state: one run, no pre-roll (8 is a keyframe anyway)
    _with_network_prior(monkeypatch, _EmaPrior(), [])  # a new prior object, as resolve_prior builds one
    viewer.update(viewer.settings.replace(prior_size=256))  # the prior's own knob: its outputs are not reused
    assert not viewer.render(8, frames).stats.prior_reused


def test_model_and_device_changes(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A model change re-chooses the auto prior; a device change keeps an injected refiner; model paths may carry
    the file: prefix or ~."""
    from sparsemat.builders import build_shm

    prior, resolved = _CountingPrior(), []
    _with_network_prior(monkeypatch, prior, resolved)
    sess = _session(prior="auto")
    frame = FrameInput(rgb=_sequence(1)(1).rgb)
    sess.process(1, frame)
    injected = sess.refiner
    sess.update(sess.settings.replace(model="paper"))
    sess.process(1, frame)
    assert resolved == ["auto", "auto"] and sess.refiner is injected
    sess.update(sess.settings.replace(device="auto"))
    assert sess.refiner is injected
    ckpt = tmp_path / "m.pt"
    torch.save({"config": "lite", "state_dict": injected.state_dict()}, ckpt)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in (f"file:{ckpt}", "~/m.pt"):
        assert build_shm(name).cfg == injected.cfg


# ---------------------------------------------------------------- anamorphic plates
class _DiscPrior:
    """A network prior that records its input and answers with the round disc it expects to see.

    It returns alpha 1 inside a circle of radius ``0.3 * h`` centred in its input: on a desqueezed
    input that circle covers the same part of the picture as the plate's (squeezed) ellipse.
    """

    name = "disc"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def reset(self) -> None:
        pass

    def predict(self, lr_rgb: torch.Tensor) -> torch.Tensor:
        h, w = (int(s) for s in lr_rgb.shape[-2:])
        self.sizes.append((h, w))
        yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
        return ((((xx - w / 2) ** 2 + (yy - h / 2) ** 2).sqrt() < 0.3 * h).float())[None, None]


def test_anamorphic_plate_reaches_the_prior_desqueezed_and_its_matte_comes_back_squeezed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    prior = _DiscPrior()
    _with_network_prior(monkeypatch, prior, [])
    # a 2x anamorphic plate: 192 pixels high, 96 wide, showing a 192 x 192 picture
    rgb = np.full((192, 96, 3), 0.5, np.float32)
    sess = _session(prior="auto", temporal=False, prior_size=128)
    res = sess.process(1, FrameInput(rgb=rgb, pixel_aspect=2.0))
    assert prior.sizes == [(128, 128)]  # square pixels for the network (128 x 64 without the aspect)
    assert res.prior.shape == (192, 96)
    # the network's round disc is an ellipse on the plate: diameters 0.6 * 192 = 115.2 px high, 57.6 px wide
    rows = np.flatnonzero(res.prior[:, 48] > 0.5)
    cols = np.flatnonzero(res.prior[96] > 0.5)
    assert abs(len(rows) - 115.2) <= 3 and abs(len(cols) - 57.6) <= 2

    square = _DiscPrior()
    _with_network_prior(monkeypatch, square, [])
    _session(prior="auto", temporal=False, prior_size=128).process(1, FrameInput(rgb=rgb))
    assert square.sizes == [(256, 128)]  # square pixels assumed: short side (the width) to 128


def test_bad_pixel_aspect_is_refused_with_the_value() -> None:
    sess = _session(prior="auto", temporal=False)
    with pytest.raises(InputError, match="pixel aspect ratio must be a positive number, got -2"):
        sess.process(1, FrameInput(rgb=np.full((32, 32, 3), 0.5, np.float32), pixel_aspect=-2.0))
