"""The ``refine_strength`` knob: a logit-space pull of the refined values towards the refiner's prior input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sparsemat import Settings
from sparsemat.builders import build_shm
from sparsemat.engine import FrameInput, Session
from sparsemat.engine.guided import guided_dense
from sparsemat.engine.refine import temper_refinement
from sparsemat.engine.sparsity import spatial_band
from sparsemat.errors import SettingsError
from sparsemat.models.shm import SHM
from sparsemat.priors.base import prior_input_size
from test_guided import _plate as guided_plate

H, W = 240, 320


def _plate() -> tuple[np.ndarray, np.ndarray]:
    """The guided-filter tests' warm disc over a noisy background at ``H×W``."""
    return guided_plate(3, H, W)


def _lite_with_a_correction(scale: float = 1.0) -> SHM:
    """The shipped ``lite`` (guided input, residual head) with its last head conv times ``scale``."""
    shm = build_shm("lite")
    with torch.no_grad():
        shm.head[-1].weight.mul_(scale)
    return shm


def _render(strength: float, refiner: SHM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(alpha, prior, low-res matte)`` of one frame through the engine at ``strength``."""
    rgb, alpha = _plate()
    lr = F.interpolate(torch.from_numpy(alpha)[None, None], size=prior_input_size(H, W, 128), mode="area")
    settings = Settings(prior="input", device="cpu", backend="torch", temporal=False, prior_size=128,
                        refine_strength=strength)
    res = Session(settings, refiner=refiner).process(1, FrameInput(rgb=rgb, matte=lr[0, 0].numpy()))
    return res.alpha, res.prior, lr[0, 0].numpy()


def test_temper_refinement_hand_values() -> None:
    alpha = torch.tensor([0.9, 0.2, 0.5, 1.0])
    base = torch.tensor([0.5, 0.5, 0.1, 0.0])
    assert torch.equal(temper_refinement(alpha, base, 1.0), alpha)
    assert torch.equal(temper_refinement(alpha, base, 0.0), base)
    half = temper_refinement(alpha, base, 0.5)
    # σ(½·logit 0.9 + ½·logit 0.5) = σ(½·ln 9) = 3/4; σ(½·ln ¼) = 1/3; σ(½·ln(1/9)) = 1/4
    np.testing.assert_allclose(half[:3].numpy(), [0.75, 1 / 3, 0.25], atol=1e-6)
    # a saturated refinement over a base of 0 (clamped to the SHM's 1e-3) stays a valid alpha between the two
    assert 0.0 < float(half[3]) < 1.0
    quarter = temper_refinement(alpha, base, 0.25)
    assert bool(((quarter[:3] - base[:3]).abs() < (half[:3] - base[:3]).abs()).all())


def test_half_strength_equals_the_refiner_with_half_its_correction() -> None:
    """For the residual ``lite`` the knob scales the head's logit correction: σ(s·head + logit(base))."""
    refined, prior, _ = _render(1.0, _lite_with_a_correction())
    tempered, prior_t, _ = _render(0.5, _lite_with_a_correction())
    halved, _, _ = _render(1.0, _lite_with_a_correction(0.5))
    np.testing.assert_array_equal(prior_t, prior)
    band = spatial_band(torch.from_numpy(prior), 15).numpy()
    assert np.abs(refined - halved)[band].max() > 0.02  # the correction is real
    np.testing.assert_allclose(tempered, halved, atol=1e-5)
    np.testing.assert_array_equal(tempered[~band], prior[~band])  # outside the band: the prior, untouched


def test_zero_strength_returns_the_refiners_prior_input() -> None:
    rgb, _ = _plate()
    out, prior, lr_matte = _render(0.0, _lite_with_a_correction())
    lr_size = lr_matte.shape
    hr = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    lr_rgb = F.interpolate(hr, size=lr_size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    guided = guided_dense(lr_rgb, torch.from_numpy(lr_matte)[None, None], hr)[0, 0].numpy()
    band = spatial_band(torch.from_numpy(prior), 15).numpy()
    assert band.any()
    np.testing.assert_allclose(out, np.where(band, guided, prior), atol=2e-5)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_out_of_range_strength_is_refused_by_name(bad: float) -> None:
    with pytest.raises(SettingsError, match="refine_strength"):
        Settings(refine_strength=bad)


def test_changing_strength_drops_the_frame_history() -> None:
    """A matte made at another strength must not be reused by the next frame's temporal blend."""
    rgb, alpha = _plate()
    lr = F.interpolate(torch.from_numpy(alpha)[None, None], size=prior_input_size(H, W, 128), mode="area")
    frame = FrameInput(rgb=rgb, matte=lr[0, 0].numpy())
    settings = Settings(prior="input", device="cpu", backend="torch", prior_size=128, temporal=True)
    assert settings.refine_strength == 1.0
    session = Session(settings, refiner=_lite_with_a_correction())
    session.process(1, frame)
    assert session.process(2, frame).stats.temporal_reused  # same settings: history is used
    session.update(settings.replace(refine_strength=0.5))
    res = session.process(3, frame)
    assert not res.stats.temporal_reused
    tempered, _, _ = _render(0.5, _lite_with_a_correction())
    np.testing.assert_allclose(res.alpha, tempered, atol=1e-6)
