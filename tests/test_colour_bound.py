"""The ``colour_bound`` knob: refined values are kept between the refiner's prior input and the colour-projection
alpha (``sparsemat.engine.colour_bound``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sparsemat import Settings
from sparsemat.builders import build_shm
from sparsemat.engine import FrameInput, Session
from sparsemat.engine.colour_bound import BOUND_MARGIN, bound_values
from sparsemat.engine.colour_samples import ALPHA_FB
from sparsemat.errors import SettingsError

FG = np.array([0.62, 0.74, 0.71], np.float32)
BG = np.array([0.31, 0.75, 0.52], np.float32)


def test_bound_values_hand_values() -> None:
    values = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.99])
    base = torch.tensor([0.2, 0.6, 0.4, 0.0, 0.9])
    alpha_fb = torch.tensor([0.0, 0.8, 0.6, 1.0, 0.95])
    np.testing.assert_allclose(bound_values(values, base, alpha_fb, 0.0).numpy(), [0.2, 0.6, 0.5, 0.3, 0.95])
    np.testing.assert_allclose(bound_values(values, base, alpha_fb, 0.05).numpy(), [0.25, 0.55, 0.5, 0.3, 0.99],
                               atol=1e-6)
    assert bound_values(values, base, alpha_fb, 0.7).tolist() == pytest.approx(values.tolist())  # all inside


def _disc_plate(h: int = 256, w: int = 384) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two flat colours split by a hard-edged disc, and a soft, grown ×8 prior of it (the refiner tends to
    overshoot such a prior onto the background)."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    alpha = (((yy - 128) ** 2 + (xx - 190) ** 2) < 80.0 ** 2).astype(np.float32)
    rgb = alpha[..., None] * FG + (1 - alpha[..., None]) * BG
    grown = (((yy - 128) ** 2 + (xx - 190) ** 2) < 86.0 ** 2).astype(np.float32)
    lr = torch.nn.functional.avg_pool2d(torch.from_numpy(grown)[None, None], 8)[0, 0].numpy()
    return rgb.astype(np.float32), alpha, lr


def _render(bound: bool, model: str = "lite_cs4") -> tuple[np.ndarray, torch.Tensor | None, torch.Tensor | None]:
    rgb, _, lr = _disc_plate()
    shm = build_shm(model)
    seen: dict[str, torch.Tensor] = {}
    shm.stem.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0].features.clone()))
    shm.stem.register_forward_pre_hook(lambda _m, args: seen.__setitem__("c", args[0].sites.coords.clone()))
    res = Session(Settings(prior="input", device="cpu", backend="torch", temporal=False, prior_size=128,
                           colour_bound=bound), refiner=shm).process(0, FrameInput(rgb=rgb, matte=lr))
    return res.alpha, seen.get("x"), seen.get("c")


def test_the_engine_keeps_every_refined_value_between_its_two_estimates() -> None:
    """With the bound, each active pixel is the unbounded value clipped to [min, max] of the refiner's prior input
    and α_fb (read from the refiner's own input); nothing else moves, and on this plate it removes an overshoot."""
    free, feats, coords = _render(False)
    bounded, feats_b, _ = _render(True)
    assert feats is not None and coords is not None and feats_b is not None
    assert torch.equal(feats, feats_b)  # the refiner sees the same input either way
    f = (feats + 1) / 2
    base, alpha_fb = f[:, 3], f[:, 4 + ALPHA_FB]
    ys, xs = coords[:, 1].numpy(), coords[:, 2].numpy()
    want = bound_values(torch.from_numpy(free[ys, xs]), base, alpha_fb, BOUND_MARGIN).numpy()
    np.testing.assert_allclose(bounded[ys, xs], want, atol=1e-6)
    outside = np.ones_like(free, dtype=bool)
    outside[ys, xs] = False
    np.testing.assert_array_equal(bounded[outside], free[outside])
    _, gt, _ = _disc_plate()
    moved = np.abs(bounded - free) > 0.05
    assert moved.sum() > 100  # the refiner overshoots here ...
    assert np.abs(bounded - gt)[moved].mean() < np.abs(free - gt)[moved].mean()  # ... and the bound is closer


def test_refiners_without_colour_samples_are_never_bounded() -> None:
    np.testing.assert_array_equal(_render(True, "lite")[0], _render(False, "lite")[0])


def test_the_bound_knob_is_a_switch() -> None:
    with pytest.raises(SettingsError, match="colour_bound"):
        Settings(colour_bound="yes")  # type: ignore[arg-type]
