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
from sparsemat.engine.soft_ramp import gate_at_sites, ramp_gate
from sparsemat.engine.sparsity import spatial_band
from sparsemat.errors import SettingsError
from sparsemat.models.shm import SHM
from sparsemat.priors.base import prior_input_size

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
    """A disc whose left half has a hard edge and right half a soft ramp 60 px (32 prior px) wide."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r = np.hypot(xx - W / 2, yy - H / 2)
    width = np.where(xx < W / 2, 1.0, 60.0)
    alpha = np.clip((H / 3 - r) / width + 0.5, 0.0, 1.0).astype(np.float32)
    rng = np.random.default_rng(1)
    bg = rng.uniform(0.2, 0.4, size=(H, W, 3)).astype(np.float32)
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
    off, prior, lr = _render(0.0)
    on, prior_on, _ = _render(0.2)
    zero, _, _ = _render(0.0, strength=0.0)  # the refiner's prior input (its guided upsampling) in the band
    np.testing.assert_array_equal(prior_on, prior)
    band = spatial_band(torch.from_numpy(prior), 15).numpy()
    gate = F.interpolate(ramp_gate(torch.from_numpy(lr)[None, None], 0.2), size=(H, W), mode="bilinear",
                         align_corners=False)[0, 0].numpy()
    soft, sharp = band & (gate == 0.0), band & (gate == 1.0)
    assert soft.sum() > 1000 and sharp.sum() > 1000  # both kinds of edge are in the band
    assert np.abs(off - zero)[soft].max() > 0.02  # unguarded, the refiner moves the soft ramp
    np.testing.assert_allclose(on[soft], zero[soft], atol=1e-6)  # guarded: the ramp is the refiner's input
    np.testing.assert_allclose(on[sharp], off[sharp], atol=1e-6)  # the sharp edge is refined as before
    np.testing.assert_array_equal(on[~band], prior[~band])


def test_guard_is_on_by_default_and_zero_skips_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default 0.1 (chosen on a 24-plate decision set, docs/models.md "Twelfth session"); 0 skips the gate."""
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
    settings = Settings(prior="input", device="cpu", backend="torch", prior_size=128)
    session = Session(settings, refiner=_refiner())
    session.process(1, FrameInput(rgb=rgb, matte=lr))
    assert session.process(2, FrameInput(rgb=rgb, matte=lr)).stats.temporal_reused
    session.update(settings.replace(soft_edge_guard=0.2))
    assert not session.process(3, FrameInput(rgb=rgb, matte=lr)).stats.temporal_reused
