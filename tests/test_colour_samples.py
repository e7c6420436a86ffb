"""Colour-sample inputs of the SHM: the push-pull fill, the F/B estimates and their projection alpha, sparse ==
dense, the engine and the trainer feed the same values, and a 4-input checkpoint widens to the 12-input network
without changing what it computes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sparsemat import Settings
from sparsemat.builders import SHM_CONFIGS
from sparsemat.engine import FrameInput, Session
from sparsemat.engine.colour_samples import (
    DEFAULT_LEVELS,
    colour_estimates,
    levels_problem,
    push_pull,
    sample_features,
    sample_levels,
    samples_at_sites,
    samples_dense,
    wants_colour_samples,
)
from sparsemat.engine.refine import input_channels, refine_sites, site_macs
from sparsemat.errors import ModelError
from sparsemat.models.shm import SHM
from sparsemat.sparse import get_backend
from sparsemat.train.trainer import ShmTask, TrainConfig, load_init_weights

FG = np.array([0.9, 0.2, 0.1], np.float32)
BG = np.array([0.1, 0.3, 0.8], np.float32)


def _ramp_plate(h: int = 64, w: int = 96, edge: float = 48.0, width: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """A vertical soft edge (alpha ramps from 1 to 0 over ``width`` px at column ``edge``) of two flat colours."""
    xx = np.arange(w, dtype=np.float32)[None, :].repeat(h, 0)
    alpha = np.clip((edge - xx) / width + 0.5, 0.0, 1.0).astype(np.float32)
    rgb = alpha[..., None] * FG + (1 - alpha[..., None]) * BG
    return rgb.astype(np.float32), alpha


def _lowres(rgb: np.ndarray, alpha: np.ndarray, f: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    hr = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()
    a = torch.from_numpy(alpha)[None, None]
    return hr, F.avg_pool2d(hr, f), F.avg_pool2d(a, f)


def test_push_pull_keeps_samples_and_fills_holes() -> None:
    torch.manual_seed(0)
    v = torch.rand(2, 3, 19, 27)
    w = (torch.rand(2, 1, 19, 27) < 0.3).float()
    out = push_pull(v, w)
    assert out.shape == v.shape
    on = w.expand_as(v) > 0
    assert torch.allclose(out[on], v[on], atol=1e-6)  # every sample is kept exactly
    # a constant image is filled with its constant wherever the samples are
    const = torch.full((1, 3, 19, 27), 0.4)
    w1 = torch.zeros(1, 1, 19, 27)
    w1[..., 2, 3] = 1.0
    assert torch.allclose(push_pull(const, w1), const, atol=1e-6)
    assert float(push_pull(v[:1], torch.zeros(1, 1, 19, 27)).abs().max()) == 0.0  # no samples at all: 0


def test_estimates_find_both_layers_and_the_projection_recovers_alpha_under_a_dilated_prior() -> None:
    rgb, alpha = _ramp_plate()
    hr, lr_rgb, _ = _lowres(rgb, alpha, 4)
    # a prior dilated by 6 px (the edge moved right by 6 px): wrong, but its confident regions hold the right colours
    wrong = np.clip((54.0 - np.arange(96, dtype=np.float32)) / 6.0 + 0.5, 0, 1)[None].repeat(64, 0)
    lr_prior = F.avg_pool2d(torch.from_numpy(wrong)[None, None], 4)
    est = colour_estimates(lr_rgb, lr_prior)
    assert est.shape == (1, 6, 16, 24)
    np.testing.assert_allclose(est[0, :3].mean((1, 2)).numpy(), FG, atol=0.02)
    np.testing.assert_allclose(est[0, 3:].mean((1, 2)).numpy(), BG, atol=0.02)
    s = samples_dense(lr_rgb, lr_prior, hr)[0]
    assert s.shape == (8, 64, 96) and float(s.min()) >= 0.0 and float(s.max()) <= 1.0
    band = slice(36, 66)
    err_fb = np.abs(s[6, :, band].numpy() - alpha[:, band]).mean()
    err_prior = np.abs(wrong[:, band] - alpha[:, band]).mean()
    assert err_fb < 0.02 and err_prior > 0.19  # the projection puts the edge back where the colours say
    assert float(np.linalg.norm(FG - BG)) > 1.0 and float(s[7].min()) > 0.9 and float(s[7].max()) == 1.0  # clipped at 1


def test_sites_equal_dense() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.random((50, 70, 3), dtype=np.float32)
    alpha = (rng.random((50, 70)) < 0.5).astype(np.float32)
    hr, lr_rgb, lr_prior = _lowres(rgb, alpha, 5)
    dense = samples_dense(lr_rgb, lr_prior, hr)[0]
    mask = torch.from_numpy(rng.random((50, 70)) < 0.3)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = True  # borders (clamped sampling)
    coords = torch.nonzero(mask)
    at = samples_at_sites(lr_rgb, lr_prior, hr[0].permute(1, 2, 0)[mask], coords, (50, 70))
    assert at.shape == (int(mask.sum()), 8)
    assert float((at - dense.permute(1, 2, 0)[mask]).abs().max()) < 1e-5
    assert samples_at_sites(lr_rgb, lr_prior, torch.zeros(0, 3), torch.zeros(0, 2, dtype=torch.long), (50, 70)).shape \
        == (0, 8)


def _cs_shm(seed: int = 0) -> SHM:
    torch.manual_seed(seed)
    return SHM(replace(SHM_CONFIGS["lite"], colour_samples=True)).eval()


def _ramp_batch() -> dict[str, torch.Tensor]:
    """A one-item trainer batch of a 64 px ramp plate with an exact ×4 prior."""
    rgb, alpha = _ramp_plate(64, 64, 30.0)
    hr, lr_rgb, lr_prior = _lowres(rgb, alpha, 4)
    prior_hr = F.interpolate(lr_prior, size=(64, 64), mode="bilinear", align_corners=False)
    return {"rgb": hr, "alpha": torch.from_numpy(alpha)[None, None], "lr_rgb": lr_rgb, "lr_prior": lr_prior,
            "prior_hr": prior_hr}


def test_engine_and_trainer_feed_the_same_twelve_features() -> None:
    """The stem sees RGB, the guided prior and the 8 colour samples, in [-1, 1], in the engine and the trainer."""
    shm = _cs_shm()
    assert wants_colour_samples(shm) and input_channels(shm) == 12 and shm.stem[0][0].in_channels == 12
    assert not wants_colour_samples(SHM(SHM_CONFIGS["lite"])) and input_channels(SHM(SHM_CONFIGS["lite"])) == 4
    seen: list[torch.Tensor] = []
    handle = shm.stem.register_forward_pre_hook(lambda _m, args: seen.append(args[0].features.clone()))
    batch = _ramp_batch()
    hr, lr_rgb, lr_prior, prior_hr = batch["rgb"], batch["lr_rgb"], batch["lr_prior"], batch["prior_hr"]
    task = ShmTask(TrainConfig(config="lite", crop=64, lr_factors=(4,)))
    with torch.no_grad():
        _, band, base = task.forward(shm, batch)
        sel = band[0, 0] > 0
        coords = torch.nonzero(sel)
        refine_sites(shm, get_backend("torch", "cpu"), hr[0].permute(1, 2, 0), prior_hr[0, 0], sel, lr_rgb, lr_prior,
                     guide=__import__("sparsemat.engine.guided", fromlist=["x"]).guided_coefficients(lr_rgb, lr_prior))
    handle.remove()
    trainer_feats = seen[0].permute(0, 2, 3, 1)[0][sel]  # dense backend: [B, C, H, W]
    engine_feats = seen[1]
    assert trainer_feats.shape == engine_feats.shape == (coords.shape[0], 12)
    assert float((trainer_feats - engine_feats).abs().max()) < 1e-5
    want = samples_dense(lr_rgb, lr_prior, hr)[0].permute(1, 2, 0)[sel] * 2 - 1
    assert float((engine_feats[:, 4:] - want).abs().max()) < 1e-5
    assert float((engine_feats[:, 3] - (base[0, 0][sel] * 2 - 1)).abs().max()) < 1e-5


def test_site_macs_counts_the_wider_stem() -> None:
    shm = _cs_shm()
    narrow = SHM(SHM_CONFIGS["lite"]).eval()
    rng = np.random.default_rng(1)
    mask = torch.from_numpy(rng.random((40, 56)) < 0.3)
    rgb = torch.from_numpy(rng.random((40, 56, 3), dtype=np.float32))
    prior = torch.from_numpy(rng.random((40, 56), dtype=np.float32))
    backend = get_backend("torch", "cpu")
    with torch.no_grad():
        _, counted = refine_sites(shm, backend, rgb, prior, mask, rgb.permute(2, 0, 1)[None], prior[None, None])
    assert site_macs(shm, backend, mask) == counted
    extra = int(mask.sum()) * 9 * 8 * shm.cfg.stem  # 8 more input channels in the stem's first 3x3 conv
    assert counted - site_macs(narrow, backend, mask) == pytest.approx(extra)


def test_a_four_input_checkpoint_widens_without_changing_the_result() -> None:
    torch.manual_seed(5)
    narrow = SHM(SHM_CONFIGS["lite"]).eval()
    with torch.no_grad():  # a trained-looking head: the residual is not zero
        narrow.head[-1].weight.normal_(0, 0.5)
    wide = _cs_shm(9)
    assert load_init_weights(wide, narrow.state_dict()) == ["stem.0.0.weight"]
    rng = np.random.default_rng(0)
    rgb = rng.random((120, 160, 3)).astype(np.float32)
    yy, xx = np.mgrid[:30, :40]
    matte = ((xx - 20) ** 2 + (yy - 15) ** 2 < 80).astype(np.float32)
    outs = [Session(Settings(prior="input", temporal=False, device="cpu"), refiner=m).process(
        0, FrameInput(rgb=rgb, matte=matte)).alpha for m in (narrow, wide)]
    assert np.abs(outs[0] - outs[1]).max() < 1e-6
    band = (outs[0] > 0.01) & (outs[0] < 0.99)
    assert band.any()
    with pytest.raises(ModelError, match="'run.pt' \\(--init\\) does not fit"):
        load_init_weights(narrow, SHM(SHM_CONFIGS["paper"]).state_dict(), "Checkpoint 'run.pt' (--init)")


def test_whole_view_crops_see_the_layer_outside_the_crop() -> None:
    """A crop holding only foreground and the edge gets the background colour from its whole composite (its own
    low-res view has no background sample), and its prior is the whole composite's degraded matte, cut."""
    from sparsemat.train import imops
    from sparsemat.train.datasets import WholeView, shm_crops_from

    h, w = 96, 256
    xx = np.arange(w, dtype=np.float32)[None, :].repeat(h, 0)
    # background | hard step at x = 60 | foreground | soft edge fading out at the right border (never below 0.1)
    alpha = ((xx >= 60) * np.clip((256.0 - xx) / 8.0, 0.0, 1.0)).astype(np.float32)
    rgb = (alpha[..., None] * FG + (1 - alpha[..., None]) * BG).astype(np.float32)
    view = WholeView(rgb, alpha, 4, np.random.default_rng(0))
    degraded = view.prior("down4")[0]
    flips = set()
    for seed in range(8):
        item = shm_crops_from(np.random.default_rng(seed), rgb, alpha, 64, 4, "down4", centre_prob=1.0, view=view)
        est = item["est"]
        assert est.shape == (6, 64, 64) and item["lr_prior"].shape == (1, 16, 16)
        own = colour_estimates(torch.from_numpy(item["lr_rgb"])[None], torch.from_numpy(item["lr_prior"])[None])
        assert float(own[0, 3:].abs().max()) == 0.0  # no background sample in the crop's own view
        assert np.abs(est[3:] - BG[:, None, None]).max() < 0.02  # the whole view has them
        assert np.abs(est[:3] - FG[:, None, None]).max() < 0.02
        # the crop is columns 192..255 of some rows, maybe mirrored; its prior is the same cut of `degraded`
        flip = bool(item["rgb"][0, 0, 0] < item["rgb"][0, 0, -1])  # the edge (bluer) is on the left when mirrored
        flips.add(flip)
        cut_a, cut_d = alpha[:, 192:], degraded[:, 192:]
        if flip:
            cut_a, cut_d = cut_a[:, ::-1], cut_d[:, ::-1]
        assert np.array_equal(item["alpha"][0], cut_a[:64])  # the edge is vertical: any rows
        want = imops.resize(np.ascontiguousarray(cut_d[:64]), (16, 16), mode="area")
        assert np.allclose(item["lr_prior"][0], want, atol=1e-6)
        assert np.abs(est[3:, :, 0 if flip else -1] - BG[:, None]).max() < 0.02
    assert flips == {False, True}


def test_trainer_takes_whole_view_estimates_when_the_batch_has_them() -> None:
    """``est`` in a batch (``TrainConfig.whole_view``) replaces the crop's own estimates in the SHM's input."""
    shm = _cs_shm()
    seen: list[torch.Tensor] = []
    handle = shm.stem.register_forward_pre_hook(lambda _m, args: seen.append(args[0].features.clone()))
    batch = _ramp_batch()
    hr = batch["rgb"]
    est = torch.rand(1, 6, 64, 64, generator=torch.Generator().manual_seed(0))
    task = ShmTask(TrainConfig(config="lite", crop=64, lr_factors=(4,)))
    with torch.no_grad():
        _, band, _ = task.forward(shm, batch)
        task.forward(shm, {**batch, "est": est})
    handle.remove()
    sel = band[0, 0] > 0
    own, whole = (s.permute(0, 2, 3, 1)[0][sel] for s in seen)
    assert float((own[:, :4] - whole[:, :4]).abs().max()) == 0.0
    want = sample_features(est, hr)[0].permute(1, 2, 0)[sel] * 2 - 1
    assert float((whole[:, 4:] - want).abs().max()) < 1e-6
    assert float((own[:, 4:] - want).abs().max()) > 0.1


def test_whole_view_batches_from_the_trainer(tmp_path: object) -> None:
    """``--whole-view`` reaches the data worker: every batch carries ``est`` of the crops' size, and a batch is a
    function of the seed and step."""
    from sparsemat.train import trainer

    cfg = TrainConfig(batch=3, crop=32, lr_factors=(2,), photos="none", workers=0, whole_view=True,
                      sample_scale=(2.0, 3.0), crops_per_sample=3)
    stream = trainer.BatchStream("shm", cfg)
    a, b = stream.get(0, 1), stream.get(0, 1)
    stream.close()
    assert tuple(a["est"].shape) == (3, 6, 32, 32)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sample_levels_decide_which_prior_pixels_are_colour_samples() -> None:
    """A prior that never passes 0.98 (a body at 0.9) has no foreground sample at the default levels — the
    estimate is 0 — and the right colour at (0.8, 0.2); sparse and dense agree at any levels."""
    rgb, alpha = _ramp_plate()
    hr, lr_rgb, lr_prior = _lowres(rgb, alpha, 4)
    dull = lr_prior * 0.9
    assert colour_estimates(lr_rgb, dull)[0, :3].abs().max() == 0.0
    est = colour_estimates(lr_rgb, dull, (0.8, 0.2))
    np.testing.assert_allclose(est[0, :3].mean((1, 2)).numpy(), FG, atol=0.02)
    np.testing.assert_allclose(est[0, 3:].mean((1, 2)).numpy(), BG, atol=0.02)
    dense = samples_dense(lr_rgb, dull, hr, (0.8, 0.2))[0]
    mask = torch.zeros(64, 96, dtype=torch.bool)
    mask[::3, ::5] = True
    at = samples_at_sites(lr_rgb, dull, hr[0].permute(1, 2, 0)[mask], torch.nonzero(mask), (64, 96), levels=(0.8, 0.2))
    assert float((at - dense.permute(1, 2, 0)[mask]).abs().max()) < 1e-5
    assert sample_levels(_cs_shm()) == DEFAULT_LEVELS == (0.98, 0.02) == SHM_CONFIGS["lite_cs"].sample_levels
    assert levels_problem((0.8, 0.2)) is None
    assert "0 < background < foreground < 1" in str(levels_problem((0.2, 0.8)))
    assert "two numbers" in str(levels_problem((0.8,)))


def test_the_engine_takes_colour_samples_at_the_models_levels() -> None:
    """The engine hands a model the colour samples of its own ``sample_levels``: with a matte that never passes
    0.98, a default model sees no foreground colour (F̂ = 0, fed as -1) and a (0.8, 0.2) model sees the body's."""
    rgb, alpha = _ramp_plate(96, 128, 64.0, 8.0)
    matte = (alpha * 0.9).astype(np.float32)
    seen: dict[tuple[float, float], torch.Tensor] = {}
    for levels in ((0.98, 0.02), (0.8, 0.2)):
        torch.manual_seed(0)
        shm = SHM(replace(SHM_CONFIGS["lite_cs"], sample_levels=levels)).eval()
        assert sample_levels(shm) == levels
        handle = shm.stem.register_forward_pre_hook(
            lambda _m, args, lv=levels: seen.__setitem__(lv, args[0].features.clone()))
        Session(Settings(prior="input", temporal=False, device="cpu"), refiner=shm).process(
            0, FrameInput(rgb=rgb, matte=matte))
        handle.remove()
    f_default = (seen[(0.98, 0.02)][:, 4:7] + 1) / 2  # F̂ in [0, 1]
    f_loose = (seen[(0.8, 0.2)][:, 4:7] + 1) / 2
    assert float(f_default.abs().max()) == 0.0
    np.testing.assert_allclose(f_loose.mean(0).numpy(), FG, atol=0.03)
