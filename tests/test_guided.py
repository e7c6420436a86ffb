"""Guided-filter upsampling of the prior: sparse evaluation == dense, and the engine and the trainer both feed
it to refiners with ``guided_prior`` (and only on a low-resolution prior)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from sparsemat import Settings
from sparsemat.builders import SHM_CONFIGS
from sparsemat.engine import FrameInput, Session
from sparsemat.engine.guided import guided_at_sites, guided_coefficients, guided_dense
from sparsemat.engine.resize import resize_plane
from sparsemat.engine.sparsity import spatial_band
from sparsemat.evaluation.guided_filter import guided_upsample
from sparsemat.models.shm import SHM
from sparsemat.priors.base import prior_input_size
from sparsemat.train.trainer import ShmTask, TrainConfig

H, W = 90, 122


def _plate(seed: int = 0, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """A two-colour disc over a noisy background: ``(rgb [h,w,3], alpha [h,w])`` float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip(h / 3 - np.hypot(xx - w / 2, yy - h / 2) + 0.5, 0.0, 1.0).astype(np.float32)
    bg = rng.uniform(0.2, 0.4, size=(h, w, 3)).astype(np.float32)
    fg = np.array([0.9, 0.7, 0.2], np.float32)
    return (alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.float32), alpha


def _identity_lite() -> SHM:
    """``lite`` with its residual head zeroed: returns its prior input (clamped to [1e-3, 1 - 1e-3])."""
    torch.manual_seed(0)
    shm = SHM(replace(SHM_CONFIGS["lite"], guided_prior=True)).eval()
    with torch.no_grad():
        shm.head[-1].weight.zero_()
    return shm


def test_sites_equal_dense_and_the_evaluation_baseline() -> None:
    rgb, alpha = _plate()
    hr = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    lr_rgb = F.interpolate(hr, size=(23, 31), mode="bilinear", align_corners=False, antialias=True)
    lr_alpha = F.interpolate(torch.from_numpy(alpha)[None, None], size=(23, 31), mode="area")
    dense = guided_dense(lr_rgb, lr_alpha, hr)[0, 0]
    baseline = guided_upsample(lr_alpha[0, 0].numpy(), rgb)
    np.testing.assert_allclose(dense.numpy(), baseline, atol=5e-4)  # float32 closed form vs float64
    mask = torch.from_numpy(np.random.default_rng(1).random((H, W)) < 0.3)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = True  # borders (clamped sampling)
    coords = torch.nonzero(mask)
    at = guided_at_sites(guided_coefficients(lr_rgb, lr_alpha), hr[0].permute(1, 2, 0)[mask], coords, (H, W))
    assert at.shape == (int(mask.sum()),)
    assert float((at - dense[mask]).abs().max()) < 1e-5
    # an edge-aware upsampling: closer to the truth than bilinear on this plate
    bil = F.interpolate(lr_alpha, size=(H, W), mode="bilinear", align_corners=False)[0, 0].numpy()
    assert np.abs(dense.numpy() - alpha).mean() < 0.7 * np.abs(bil - alpha).mean()


def test_coefficients_are_per_item_in_a_batch() -> None:
    torch.manual_seed(3)
    g, p = torch.rand(3, 3, 12, 17), torch.rand(3, 1, 12, 17)
    a, b = guided_coefficients(g, p)
    a1, b1 = guided_coefficients(g[1:2], p[1:2])
    assert torch.allclose(a[1:2], a1) and torch.allclose(b[1:2], b1)
    q = (a * g.double()).sum(1, keepdim=True) + b
    assert q.shape == (3, 1, 12, 17) and float((q - p.double()).abs().mean()) < 0.25


def test_engine_feeds_the_guided_prior_at_the_prior_resolution() -> None:
    rgb, alpha = _plate(0, 3 * H, 3 * W)
    # the guard off: it would pull some sites back from the refiner's output to its un-clipped input
    settings = Settings(prior="input", device="cpu", backend="torch", temporal=False, prior_size=128,
                        soft_edge_guard=0.0)
    session = Session(settings, refiner=_identity_lite())
    lr_size = prior_input_size(3 * H, 3 * W, 128)
    assert lr_size[0] < 3 * H
    small = F.interpolate(torch.from_numpy(alpha)[None, None], size=lr_size, mode="area")
    res = session.process(1, FrameInput(rgb=rgb, matte=small[0, 0].numpy()))
    band = spatial_band(torch.from_numpy(res.prior), 15).numpy()
    assert band.any() and not band.all()
    hr = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    lr_rgb = F.interpolate(hr, size=lr_size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    expect = guided_dense(lr_rgb, small, hr)[0, 0].numpy()
    want = np.where(band, np.clip(expect, 1e-3, 1 - 1e-3), res.prior)
    np.testing.assert_allclose(res.alpha, want, atol=2e-5)
    assert np.abs(res.alpha - res.prior)[band].max() > 0.05  # really not the bilinear prior
    # a full-resolution matte: the band and the blend outside it use the matte itself, the refiner's input is the
    # guided upsampling of the matte at the prior's resolution (what the refiner was trained on)
    session.reset()
    soft = F.avg_pool2d(torch.from_numpy(alpha)[None, None], 9, 1, 4, count_include_pad=False)[0, 0]
    res_full = session.process(1, FrameInput(rgb=rgb, matte=soft.numpy()))
    np.testing.assert_array_equal(res_full.prior, soft.numpy())
    band_full = spatial_band(soft, 15).numpy()
    expect_full = guided_dense(lr_rgb, resize_plane(soft, lr_size)[None, None].clamp(0, 1), hr)[0, 0].numpy()
    want_full = np.where(band_full, np.clip(expect_full, 1e-3, 1 - 1e-3), soft.numpy())
    np.testing.assert_allclose(res_full.alpha, want_full, atol=2e-5)


def test_trainer_feeds_the_same_guided_prior() -> None:
    rgb, alpha = _plate(2)
    crop = 88
    r = torch.from_numpy(rgb[:crop, :crop]).permute(2, 0, 1)[None].contiguous()
    a = torch.from_numpy(alpha[:crop, :crop])[None, None].contiguous()
    lr_prior = F.interpolate(a, size=(22, 22), mode="area")
    batch = {"rgb": r, "alpha": a, "lr_rgb": F.interpolate(r, size=(22, 22), mode="area"), "lr_prior": lr_prior,
             "prior_hr": F.interpolate(lr_prior, size=(crop, crop), mode="bilinear", align_corners=False)}
    task = ShmTask(TrainConfig(config="lite", crop=crop, lr_factors=(4,)))
    with torch.no_grad():
        out, band, _ = task.forward(_identity_lite(), batch)
    expect = guided_dense(batch["lr_rgb"], lr_prior, r).clamp(1e-3, 1 - 1e-3)
    sel = band > 0
    assert bool(sel.any())
    assert float((out.alpha.features[sel] - expect[sel]).abs().max()) < 2e-5


def test_bench_dense_and_patch_methods_feed_the_same_prior_input() -> None:
    from sparsemat.bench.methods import _lowres, _refiner_prior

    rgb, alpha = _plate(0, 3 * H, 3 * W)
    small = F.interpolate(torch.from_numpy(alpha)[None, None], size=(60, 81), mode="area")[0, 0].numpy()
    rgb_hwc, lr_rgb, lr_prior, prior_hr = _lowres(rgb, small, torch.device("cpu"), prior_size=128)
    guided = _refiner_prior(_identity_lite(), rgb_hwc, lr_rgb, lr_prior, prior_hr)
    hr = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    assert torch.allclose(guided, guided_dense(lr_rgb, lr_prior, hr)[0, 0], atol=1e-6)
    assert float((guided - prior_hr).abs().max()) > 0.05
    assert _refiner_prior(SHM(SHM_CONFIGS["paper"]), rgb_hwc, lr_rgb, lr_prior, prior_hr) is prior_hr
