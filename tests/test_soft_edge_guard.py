"""The ``soft_edge_guard`` knob: refinement fades out where the low-resolution prior's transition is wide."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sparsemat import Settings
from sparsemat.builders import build_shm
from sparsemat.engine import FrameInput, Session
from sparsemat.engine.refine import temper_refinement
from sparsemat.engine.soft_ramp import (
    STRUCTURE_CONTRAST,
    gate_at_sites,
    guard_at_sites,
    plate_contrast_at_sites,
    ramp_gate,
)
from sparsemat.engine.sparsity import spatial_band
from sparsemat.errors import SettingsError
from sparsemat.models.shm import SHM
from sparsemat.priors.base import prior_input_size
from sparsemat.train.losses import local_contrast

H, W = 240, 320
LR = prior_input_size(H, W, 128)


def test_ramp_gate_hand_values() -> None:
    """Slope per prior pixel over τ, max over 3×3, clipped: flat → 0, a 20-px ramp at τ 0.1 → ½, a step → 1."""
    x = torch.arange(64, dtype=torch.float32)
    ramp = ((x - 22) / 20).clamp(0, 1)  # slope 0.05 per pixel from x = 22 to 42
    step = (x >= 32).float()
    lr = torch.stack([ramp.expand(8, 64), step.expand(8, 64)])[:, None]  # [2, 1, 8, 64]
    g = ramp_gate(lr, 0.1)
    assert g.shape == lr.shape and g.dtype == torch.float32
    np.testing.assert_allclose(g[0, 0, 4, 26:39].numpy(), 0.5, atol=1e-6)
    assert float(g[0, 0, 4, 5]) == 0.0 and float(g[0, 0, 4, 60]) == 0.0
    np.testing.assert_allclose(g[1, 0, 4, 30:34].numpy(), 1.0)  # the step's half slope 0.5 ≥ τ, and its 3×3 max
    assert float(g[1, 0, 4, 28]) == 0.0  # two pixels before the step: flat
    np.testing.assert_allclose(ramp_gate(lr, 0.05)[0, 0, 4, 26:39].numpy(), 1.0, atol=1e-6)


def test_gate_at_sites_is_the_bilinear_upsampling() -> None:
    gate = torch.rand(1, 1, 12, 16, generator=torch.Generator().manual_seed(0))
    dense = F.interpolate(gate, size=(48, 64), mode="bilinear", align_corners=False)[0, 0]
    coords = torch.tensor([[0, 0], [5, 7], [47, 63], [20, 33]])
    np.testing.assert_allclose(gate_at_sites(gate, coords, (48, 64)).numpy(),
                               dense[coords[:, 0], coords[:, 1]].numpy(), atol=1e-6)


def test_temper_refinement_per_site_strength() -> None:
    alpha = torch.tensor([0.9, 0.9, 0.9, 0.2])
    base = torch.tensor([0.5, 0.5, 0.5, 0.6])
    out = temper_refinement(alpha, base, torch.tensor([1.0, 0.0, 0.5, 0.5]))
    assert float(out[0]) == pytest.approx(0.9) and float(out[1]) == pytest.approx(0.5)
    np.testing.assert_allclose(out[2:].numpy(), temper_refinement(alpha[2:], base[2:], 0.5).numpy(), atol=1e-7)


def _plate() -> tuple[np.ndarray, np.ndarray]:
    """A disc whose left half has a hard edge and right half a soft ramp 60 px (32 prior px) wide, over a nearly
    flat background with a strip of fine stripes crossing the soft ramp."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r = np.hypot(xx - W / 2, yy - H / 2)
    width = np.where(xx < W / 2, 1.0, 60.0)
    alpha = np.clip((H / 3 - r) / width + 0.5, 0.0, 1.0).astype(np.float32)
    rng = np.random.default_rng(1)
    bg = rng.uniform(0.29, 0.31, size=(H, W, 3)).astype(np.float32)  # nearly flat: plate contrast about 0.01
    strip = (yy >= 100) & (yy < 140) & (xx >= W / 2)  # 2-px stripes across the soft ramp: structure the plate shows
    bg[strip] += 0.25 * ((xx[strip] // 2) % 2)[:, None]
    fg = np.array([0.9, 0.7, 0.2], np.float32)
    return (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32), alpha


def _refiner() -> SHM:
    """The shipped ``lite`` with its correction ×8, so the refinement is far from its prior input."""
    shm = build_shm("lite")
    with torch.no_grad():
        shm.head[-1].weight.mul_(8.0)
    return shm


def _render(guard: float, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rgb, alpha = _plate()
    lr = F.interpolate(torch.from_numpy(alpha)[None, None], size=LR, mode="area")[0, 0].numpy()
    settings = Settings(prior="input", device="cpu", backend="torch", temporal=False, prior_size=128,
                        soft_edge_guard=guard, refine_strength=strength)
    res = Session(settings, refiner=_refiner()).process(1, FrameInput(rgb=rgb, matte=lr))
    return res.alpha, res.prior, lr


def test_guard_keeps_wide_ramps_and_refines_sharp_edges() -> None:
    """Every band site is the refined value pulled to the refiner's input by the guard's weight
    ``max(slope gate, clip(plate contrast / 0.1))``, computed here independently on the dense plate."""
    off, prior, lr = _render(0.0)
    on, prior_on, _ = _render(0.2)
    zero, _, _ = _render(0.0, strength=0.0)  # the refiner's prior input (its guided upsampling) in the band
    np.testing.assert_array_equal(prior_on, prior)
    rgb, _ = _plate()
    band = spatial_band(torch.from_numpy(prior), 15).numpy()
    slope_gate = F.interpolate(ramp_gate(torch.from_numpy(lr)[None, None], 0.2), size=(H, W), mode="bilinear",
                               align_corners=False)[0, 0].clamp(0, 1).numpy()
    contrast = local_contrast(torch.from_numpy(rgb).permute(2, 0, 1)[None], 5)[0, 0].numpy()
    weight = np.maximum(slope_gate, np.clip(contrast / STRUCTURE_CONTRAST, 0.0, 1.0))
    soft = band & (weight < 0.3)  # the wide ramp over the flat background
    sharp = band & (slope_gate == 1.0)  # the hard edge
    spared = band & (slope_gate < 0.3) & (weight == 1.0)  # the wide ramp where the stripes cross it
    assert soft.sum() > 1000 and sharp.sum() > 1000 and spared.sum() > 300
    assert np.abs(off - zero)[soft].max() > 0.02  # unguarded, the refiner moves the soft ramp
    expected = temper_refinement(torch.from_numpy(off[band]), torch.from_numpy(zero[band]),
                                 torch.from_numpy(weight[band])).numpy()
    # 1.5e-3: on a flat plate the contrast is the square root of a float32 variance near 0 (weights 0 here, up
    # to 0.003 in the engine), and a weight just above 0 on a saturated base gives σ(logit(0.999)) = 0.999
    np.testing.assert_allclose(on[band], expected, atol=1.5e-3)
    assert np.abs(on[band] - expected).mean() < 1e-4
    assert np.abs(on - zero)[soft].mean() < 0.5 * np.abs(off - zero)[soft].mean()  # guarded: mostly the input
    np.testing.assert_allclose(on[sharp], off[sharp], atol=1e-6)  # the sharp edge is refined as before
    np.testing.assert_allclose(on[spared], off[spared], atol=1e-6)  # so is the structure the plate shows
    np.testing.assert_array_equal(on[~band], prior[~band])


def test_plate_contrast_at_sites_is_the_dense_local_contrast() -> None:
    """Read at sites (borders and corners included) it equals the trainer's dense 5 × 5 ``local_contrast``."""
    rgb = torch.rand(37, 53, 3, generator=torch.Generator().manual_seed(3))
    dense = local_contrast(rgb.permute(2, 0, 1)[None], 5)[0, 0]
    coords = torch.tensor([[0, 0], [0, 52], [36, 0], [36, 52], [1, 1], [18, 26], [35, 7], [2, 51]])
    np.testing.assert_allclose(plate_contrast_at_sites(rgb, coords).numpy(),
                               dense[coords[:, 0], coords[:, 1]].numpy(), atol=1e-6)
    flat = torch.full((9, 9, 3), 0.4)
    np.testing.assert_allclose(plate_contrast_at_sites(flat, torch.tensor([[4, 4], [0, 8]])).numpy(), 0.0, atol=1e-6)
    half = torch.zeros(5, 6, 3)
    half[:, 3:] = 1.0  # a black/white edge split 15 / 10 in the centre's clipped window... and half/half here:
    assert float(plate_contrast_at_sites(half, torch.tensor([[2, 3]]))[0]) == pytest.approx(np.sqrt(3 * 0.24), abs=1e-6)
    assert plate_contrast_at_sites(rgb, torch.zeros((0, 2), dtype=torch.long)).shape == (0,)


def test_guard_at_sites_spares_structure_only_when_given_a_plate() -> None:
    gate = torch.rand(1, 1, 12, 16, generator=torch.Generator().manual_seed(0)) * 0.5
    gate[..., :2, :2] = 1.0
    rgb = torch.rand(48, 64, 3, generator=torch.Generator().manual_seed(1)) * 0.2
    coords = torch.tensor([[0, 0], [5, 7], [47, 63], [20, 33], [30, 10]])
    slope = gate_at_sites(gate, coords, (48, 64))
    np.testing.assert_array_equal(guard_at_sites(gate, coords, (48, 64)).numpy(), slope.numpy())
    np.testing.assert_array_equal(guard_at_sites(gate, coords, (48, 64), rgb, 0.0).numpy(), slope.numpy())
    spared = guard_at_sites(gate, coords, (48, 64), rgb, 0.1)
    expected = torch.maximum(slope, (plate_contrast_at_sites(rgb, coords) / 0.1).clamp(0, 1))
    np.testing.assert_allclose(spared.numpy(), expected.numpy(), atol=1e-6)
    assert float(spared[0]) == 1.0 and bool((spared >= slope).all())


def test_guard_is_on_by_default_and_zero_skips_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default 0.1 (chosen on a 24-plate decision set, docs/experiments.md "Twelfth session"); 0 skips the gate."""
    assert Settings().soft_edge_guard == 0.1
    rgb, alpha = _plate()
    lr = F.interpolate(torch.from_numpy(alpha)[None, None], size=LR, mode="area")[0, 0].numpy()
    default = Session(Settings(prior="input", device="cpu", backend="torch", temporal=False, prior_size=128),
                      refiner=_refiner()).process(1, FrameInput(rgb=rgb, matte=lr))
    np.testing.assert_array_equal(default.alpha, _render(0.1)[0])
    off, _, _ = _render(0.0)
    assert np.abs(off - default.alpha).max() > 0.02  # the default guard changes this plate's wide ramp

    import sparsemat.engine.session as session_module

    def no_gate(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("ramp_gate must not run with the guard off")

    monkeypatch.setattr(session_module, "ramp_gate", no_gate)
    np.testing.assert_array_equal(_render(0.0)[0], off)


@pytest.mark.parametrize("bad", [-0.05, 1.5])
def test_out_of_range_guard_is_refused_by_name(bad: float) -> None:
    with pytest.raises(SettingsError, match="soft_edge_guard"):
        Settings(soft_edge_guard=bad)


def test_changing_the_guard_drops_the_frame_history() -> None:
    rgb, alpha = _plate()
    lr = F.interpolate(torch.from_numpy(alpha)[None, None], size=LR, mode="area")[0, 0].numpy()
    settings = Settings(prior="input", device="cpu", backend="torch", prior_size=128, temporal=True)
    session = Session(settings, refiner=_refiner())
    session.process(1, FrameInput(rgb=rgb, matte=lr))
    assert session.process(2, FrameInput(rgb=rgb, matte=lr)).stats.temporal_reused
    session.update(settings.replace(soft_edge_guard=0.2))
    assert not session.process(3, FrameInput(rgb=rgb, matte=lr)).stats.temporal_reused
