"""Trainer, losses and data layouts: a tiny SHM run learns, resume reproduces, user layouts load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
from sparsemat.builders import build_shm
from sparsemat.cli.main import main as cli_main
from sparsemat.errors import InputError, SettingsError
from sparsemat.train import losses
from sparsemat.train.datasets import AimSource, VideoMatteSource, make_source
from sparsemat.train.trainer import TrainConfig, band_mask, ema_update, lr_at, make_task, train


def _cfg(tmp_path: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        model="shm", config="lite", steps=30, batch=2, crop=64, lr=3e-3, warmup=3, seed=0, out=str(tmp_path / "run"),
        ckpt_every=10, val_every=0, log_every=10, val_size=2, lr_factors=(2,), photos="none", workers=0, threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_band_matches_engine_band() -> None:
    from sparsemat.engine.sparsity import spatial_band

    prior = torch.rand(1, 1, 40, 50) ** 4
    prior[prior < 0.3] = 0.0
    ours = band_mask(prior, 15)[0, 0] > 0
    assert torch.equal(ours, spatial_band(prior[0, 0], 15))


def test_losses_zero_on_match_and_masked() -> None:
    g = torch.rand(2, 1, 32, 32)
    m = torch.zeros_like(g)
    m[..., 8:24, 8:24] = 1
    assert float(losses.charbonnier(g, g, m)) < 2e-3
    assert float(losses.laplacian_loss(g, g, m)) == 0.0
    p = g.clone()
    p[..., :4, :4] += 0.5  # outside the mask: the Charbonnier ignores it
    assert float(losses.charbonnier(p, g, m)) < 2e-3
    assert float(losses.laplacian_loss(p, g, m)) > 0
    assert float(losses.gradient_loss(p * m, g * m, m)) == 0.0


def test_l2_loss_norm_squares_every_alpha_term() -> None:
    p = torch.zeros(1, 1, 4, 6)
    g = torch.zeros(1, 1, 4, 6)
    p[..., 1, 2] = 0.5  # one site off by 0.5, a second by -0.25
    p[..., 2, 3] = -0.25
    m = torch.ones_like(g)
    # alpha term: sum of squares / (sites + 1), the Charbonnier's normalisation
    assert float(losses.alpha_loss(p, g, m, "l2")) == pytest.approx((0.25 + 0.0625) / 25.0, rel=1e-6)
    assert float(losses.alpha_loss(p, g, m, "l1")) == pytest.approx(float(losses.charbonnier(p, g, m)))
    # gradient term by hand: forward differences in x (4 x 5 pairs) and y (3 x 6 pairs)
    dx = (p[..., :, 1:] - p[..., :, :-1]).numpy()
    dy = (p[..., 1:, :] - p[..., :-1, :]).numpy()
    want = (dx ** 2).sum() / 21.0 + (dy ** 2).sum() / 19.0
    assert float(losses.gradient_loss(p, g, m, "l2")) == pytest.approx(want, rel=1e-6)
    want1 = np.abs(dx).sum() / 21.0 + np.abs(dy).sum() / 19.0
    assert float(losses.gradient_loss(p, g, m)) == pytest.approx(want1, rel=1e-6)
    # Laplacian term: every band's squares over its own area (+1); with a full mask that area is the band's size
    bands = zip(losses.laplacian_pyramid(p, 2), losses.laplacian_pyramid(g, 2), strict=True)
    want_lap = sum(float((a - b).pow(2).sum()) / (a[0, 0].numel() + 1.0) for a, b in bands)
    assert float(losses.laplacian_loss(p, g, m, levels=2, norm="l2")) == pytest.approx(want_lap, rel=1e-6)
    with pytest.raises(ValueError, match="l1, l2"):
        losses.penalty(p, "l3")


def test_l2_alpha_term_is_minimised_by_the_mean_of_possible_mattes() -> None:
    """Where the same input is seen with a hard edge in one of several places, the L1 optimum is a hard step (the
    median) and the L2 optimum the mean ramp: the softer matte the Grad metric asks for."""
    x = torch.arange(8.0)
    gts = torch.stack([(x >= c).float() for c in (2, 3, 3, 4, 5)]).view(5, 1, 1, 8)  # one edge, five places
    mask = torch.ones(1, 1, 1, 8)
    fits = {}
    for norm in ("l1", "l2"):
        q = torch.full((1, 1, 1, 8), 0.5, requires_grad=True)
        opt = torch.optim.Adam([q], lr=0.02)
        for _ in range(600):
            opt.zero_grad()
            loss = sum(losses.alpha_loss(q, gt[None], mask, norm) for gt in gts)
            loss.backward()  # type: ignore[union-attr]
            opt.step()
        fits[norm] = q.detach().view(8)
    mean = gts.view(5, 8).mean(0)
    assert torch.allclose(fits["l2"], mean, atol=0.02)  # 0, 0, .2, .6, .8, 1, 1, 1
    assert torch.allclose(fits["l1"], (x >= 3).float(), atol=0.05)  # the median: a hard step at 3


def test_local_contrast_matches_numpy_window_std() -> None:
    rgb = torch.rand(1, 3, 12, 14)
    got = losses.local_contrast(rgb, 3)[0, 0].numpy()
    x = rgb[0].numpy().astype(np.float64)
    for y, xx in ((5, 6), (0, 0), (11, 13)):  # interior and corners (window clipped to the image)
        win = x[:, max(0, y - 1):y + 2, max(0, xx - 1):xx + 2].reshape(3, -1)
        assert got[y, xx] == pytest.approx(np.sqrt(win.var(axis=1).sum()), abs=1e-5)
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert float(losses.local_contrast(flat, 5).max()) < 1e-3


def test_flat_consistency_loss_weighs_flat_band_pixels_only() -> None:
    h, w = 16, 32
    rgb = torch.full((1, 3, h, w), 0.5)
    rgb[..., 16:] = torch.rand(1, 3, h, 16)  # right half: strong texture
    band = torch.zeros(1, 1, h, w)
    band[..., 4:12, :] = 1.0
    base = torch.full((1, 1, h, w), 0.4)
    pred = base.clone()
    assert float(losses.flat_consistency_loss(pred, base, rgb, band, 3, 0.05)) == 0.0
    pred[..., :, 20:] += 0.5  # change only where the plate is textured: not penalised
    assert float(losses.flat_consistency_loss(pred, base, rgb, band, 3, 0.05)) < 1e-3
    pred = base.clone()
    pred[..., :, :12] += 0.3  # change on the flat side, inside and outside the band
    pred[..., :4, :] += 0.5   # outside the band: ignored
    # flat band pixels (weight 1): columns 0–14; column 15's window reaches the texture (weight 0)
    got = float(losses.flat_consistency_loss(pred, base, rgb, band, 3, 0.05))
    assert got == pytest.approx(0.3 * 12 / 15, rel=1e-4)


def test_gaussian_gradient_magnitude_is_the_grad_metrics() -> None:
    from sparsemat.evaluation.metrics import gradient_magnitude

    a = np.random.default_rng(3).random((2, 1, 23, 31)).astype(np.float32)
    got = losses.gaussian_gradient_magnitude(torch.from_numpy(a)).double().numpy()
    for i in range(2):  # replicate borders included
        np.testing.assert_allclose(got[i, 0], gradient_magnitude(a[i, 0]), atol=1e-5)


def test_over_sharpening_loss_charges_a_hardened_soft_edge() -> None:
    x = torch.linspace(-1.0, 1.0, 64)
    soft = (x * 2.0 + 0.5).clamp(0, 1).expand(1, 1, 16, 64).contiguous()  # a 16 px ramp
    hard = (x > 0).float().expand(1, 1, 16, 64).contiguous()
    band = torch.ones_like(soft)
    assert float(losses.over_sharpening_loss(soft, soft, band)) == 0.0
    hardened = float(losses.over_sharpening_loss(hard, soft, band))  # the truth is soft, the matte hard
    softened = float(losses.over_sharpening_loss(soft, hard, band))  # the truth is hard, the matte soft
    assert hardened > 1e-3
    assert softened < 0.5 * hardened  # under-sharpening costs far less (only the ramp's tails are steeper)
    # by hand: the mean over the band of max(0, |grad p| - |grad g|)^2 with the metric's filters
    from sparsemat.evaluation.metrics import gradient_magnitude

    d = gradient_magnitude(hard[0, 0].numpy()) - gradient_magnitude(soft[0, 0].numpy())
    assert hardened == pytest.approx((np.clip(d, 0, None) ** 2).sum() / (d.size + 1.0), rel=1e-4)
    off = torch.zeros_like(band)
    off[..., :, :8] = 1.0  # a band away from the edge sees nothing
    assert float(losses.over_sharpening_loss(hard, soft, off)) < 1e-6


def _batch_and_moved_model(tmp_path: Path) -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    """One SHM training batch and a ``lite`` SHM moved off its base (its head's last conv randomised)."""
    from sparsemat.train import trainer

    cfg0 = _cfg(tmp_path, crop=64, batch=2)
    stream = trainer.BatchStream("shm", cfg0)
    arr = stream.get(0, 1)
    stream.close()
    torch.manual_seed(0)
    model = trainer.ShmTask(cfg0).build()
    with torch.no_grad():
        model.head[-1].weight.normal_(0, 0.1)  # type: ignore[index, union-attr]  # move off the base
    return arr, model


def _loss_with_and_without(tmp_path: Path, name: str, weight: float | str) -> tuple[float, dict[str, float], float,
                                                                                  dict[str, float]]:
    """The SHM loss and its logged terms on one batch, for a model moved off its base, without and with the
    ``TrainConfig`` field ``name`` set to ``weight``: ``(loss0, terms0, loss1, terms1)``."""
    from sparsemat.train import trainer

    arr, model = _batch_and_moved_model(tmp_path)
    l0, t0 = trainer.ShmTask(_cfg(tmp_path, crop=64, batch=2)).loss(model, arr)
    l1, t1 = trainer.ShmTask(_cfg(tmp_path, crop=64, batch=2, **{name: weight})).loss(model, arr)
    return float(l0.detach()), t0, float(l1.detach()), t1


def test_over_weight_adds_the_term_to_the_shm_loss(tmp_path: Path) -> None:
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args

    l0, t0, l1, t1 = _loss_with_and_without(tmp_path, "over_weight", 3.0)
    assert "over" not in t0 and t1["over"] > 0
    assert l1 == pytest.approx(l0 + 3.0 * t1["over"], rel=1e-5)
    args = build_parser().parse_args(["train", "shm", "--over-weight", "2", "--out", str(tmp_path)])
    assert config_from_args(args).over_weight == 2.0
    assert cli_main(["train", "shm", "--over-weight", "-1", "--out", str(tmp_path / "x")]) == 2


def test_loss_norm_l2_squares_the_shm_loss_terms(tmp_path: Path) -> None:
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args

    l0, t0, l1, t1 = _loss_with_and_without(tmp_path, "loss_norm", "l2")
    assert set(t0) == set(t1)
    for name in ("p4", "p2", "p1", "alpha", "lap"):  # every site error is below 1: its square is smaller
        assert 0 < t1[name] < t0[name]
    assert l1 == pytest.approx(0.1 * (t1["p4"] + t1["p2"] + t1["p1"]) + t1["alpha"] + t1["lap"], rel=1e-5)
    args = build_parser().parse_args(["train", "shm", "--loss-norm", "l2", "--out", str(tmp_path)])
    assert config_from_args(args).loss_norm == "l2"
    assert config_from_args(build_parser().parse_args(["train", "shm", "--out", str(tmp_path)])).loss_norm == "l1"
    with pytest.raises(SettingsError, match="--loss-norm"):
        train(_cfg(tmp_path / "lpn", model="lpn", loss_norm="l2", steps=1), quiet=True)


def test_edge_norm_sets_the_structure_terms_alone(tmp_path: Path) -> None:
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args
    from sparsemat.train import trainer

    arr, model = _batch_and_moved_model(tmp_path)
    terms = {}
    for norms in (("l1", None), ("l2", None), ("l1", "l2"), ("l2", "l1")):
        cfg = _cfg(tmp_path, crop=64, batch=2, grad_weight=1.0, loss_norm=norms[0], edge_norm=norms[1])
        terms[norms] = trainer.ShmTask(cfg).loss(model, arr)[1]
    for alpha_norm, edge_norm in (("l1", "l2"), ("l2", "l1")):
        mixed = terms[(alpha_norm, edge_norm)]
        assert mixed["alpha"] == pytest.approx(terms[(alpha_norm, None)]["alpha"], rel=1e-6)
        assert mixed["p4"] == pytest.approx(terms[(alpha_norm, None)]["p4"], rel=1e-6)
        assert mixed["lap"] == pytest.approx(terms[(edge_norm, None)]["lap"], rel=1e-6)
        assert mixed["grad"] == pytest.approx(terms[(edge_norm, None)]["grad"], rel=1e-6)
    assert terms[("l1", "l2")]["lap"] != pytest.approx(terms[("l1", None)]["lap"], rel=1e-3)
    args = build_parser().parse_args(["train", "shm", "--edge-norm", "l2", "--out", str(tmp_path)])
    assert (config_from_args(args).loss_norm, config_from_args(args).edge_norm) == ("l1", "l2")
    with pytest.raises(SettingsError, match="--edge-norm"):
        train(_cfg(tmp_path / "lpn", model="lpn", edge_norm="l2", steps=1), quiet=True)


def test_flat_weight_adds_the_term_to_the_shm_loss(tmp_path: Path) -> None:
    l0, t0, l1, t1 = _loss_with_and_without(tmp_path, "flat_weight", 2.0)
    assert "flat" not in t0 and t1["flat"] > 0
    assert l1 == pytest.approx(l0 + 2.0 * t1["flat"], rel=1e-5)


def test_validation_reports_the_base_alpha(tmp_path: Path) -> None:
    """An untouched residual SHM returns its base (up to the logit clamp), so its validation equals the base
    blend's."""
    from sparsemat.train import trainer

    task = trainer.ShmTask(_cfg(tmp_path, crop=64, val_size=2))
    model = task.build()
    m = task.validate(model)
    assert m["mad_unk"] == pytest.approx(m["base_mad_unk"], rel=2e-3)
    assert m["grad_unk"] == pytest.approx(m["base_grad_unk"], rel=2e-3)
    assert m["base_mad_unk"] != pytest.approx(m["prior_mad_unk"])  # the guided base is not the bilinear prior


def test_cuda_device_without_a_gpu_is_a_settings_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without a GPU
    with pytest.raises(SettingsError, match="no CUDA GPU"):
        train(_cfg(tmp_path, device="cuda"), quiet=True)
    assert not (tmp_path / "run").exists()  # refused before anything is written
    assert cli_main(["train", "shm", "--device", "cuda", "--out", str(tmp_path / "cli")]) == 2


def test_unknown_device_is_a_settings_error(tmp_path: Path) -> None:
    from sparsemat.train.trainer import training_device

    for name in ("gpu", "meta"):
        with pytest.raises(SettingsError, match="--device"):
            training_device(name)
    assert training_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu(tmp_path: Path) -> None:
    """Same seed, same batches: a few steps on CUDA follow the CPU run's losses; exports are CPU tensors."""
    runs = {}
    for dev in ("cpu", "cuda"):
        res = train(_cfg(tmp_path / dev, steps=4, fixed_batches=2, val_every=4, device=dev), quiet=True)
        runs[dev] = res
    np.testing.assert_allclose(runs["cuda"]["losses"], runs["cpu"]["losses"], rtol=2e-3)
    assert runs["cuda"]["history"][-1]["mad_unk"] == pytest.approx(runs["cpu"]["history"][-1]["mad_unk"], rel=1e-2)
    sd = torch.load(tmp_path / "cuda" / "run" / "best.pt", weights_only=True)["state_dict"]
    assert all(v.device.type == "cpu" for v in sd.values())


def test_lr_schedule() -> None:
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(99, cfg) == pytest.approx(1e-4, rel=0.05)
    assert lr_at(50, cfg) < lr_at(20, cfg)


def test_short_shm_run_lowers_loss_and_exports(tmp_path: Path) -> None:
    # overfit two fixed batches: the loss on them must fall clearly within a few dozen steps
    res = train(_cfg(tmp_path, val_every=30, fixed_batches=2, steps=30), quiet=True)
    losses_ = res["losses"]
    assert len(losses_) == 30
    assert np.mean(losses_[-4:]) < 0.7 * np.mean(losses_[:4]), losses_
    hist = res["history"]
    assert [h["step"] for h in hist] == [0, 30]
    assert all(np.isfinite([h["mad_unk"] for h in hist]))
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2
    shm = build_shm(tmp_path / "run" / "best.pt")  # deployable format
    assert not shm.training


def test_resume_continues_from_checkpoint_step(tmp_path: Path) -> None:
    full = train(_cfg(tmp_path / "a", steps=8, ckpt_every=4), quiet=True)["losses"]

    class Stop(Exception):
        pass

    def stop_at(step: int, terms: dict[str, float]) -> None:
        if step == 6:
            raise Stop

    cfg = _cfg(tmp_path / "b", steps=8, ckpt_every=4)
    with pytest.raises(Stop):
        train(cfg, quiet=True, on_step=stop_at)
    assert torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["step"] == 4
    seen: list[int] = []
    resumed = train(_cfg(tmp_path / "b", steps=8, ckpt_every=4, resume=True), quiet=True,
                    on_step=lambda s, t: seen.append(s))
    assert seen == [5, 6, 7, 8]  # continues at the checkpoint step, not from 0 nor from 6
    assert len(resumed["losses"]) == 8
    np.testing.assert_allclose(resumed["losses"], full, rtol=1e-4, atol=1e-5)  # same batches, same weights


def test_time_limit_stops_with_a_checkpoint_that_resume_continues_exactly(tmp_path: Path) -> None:
    full = train(_cfg(tmp_path / "a", steps=6, ckpt_every=100), quiet=True)
    assert full["step"] == 6 and full["stopped"] == ""
    cut = train(_cfg(tmp_path / "b", steps=6, ckpt_every=100, time_limit=1e-9), quiet=True)
    # the limit is spent after the first step: it is checkpointed although ckpt_every is 100
    assert cut["step"] == 1 and len(cut["losses"]) == 1
    assert "time limit" in cut["stopped"] and "after step 1 of 6" in cut["stopped"] and "--resume" in cut["stopped"]
    assert torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["step"] == 1
    seen: list[int] = []
    resumed = train(_cfg(tmp_path / "b", steps=6, ckpt_every=100, resume=True), quiet=True,
                    on_step=lambda s, t: seen.append(s))
    assert seen == [2, 3, 4, 5, 6] and resumed["step"] == 6 and resumed["stopped"] == ""
    np.testing.assert_allclose(resumed["losses"], full["losses"], rtol=1e-4, atol=1e-5)


def test_time_limit_flag_reaches_the_config_and_refuses_negatives(tmp_path: Path) -> None:
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args

    def cfg(*flags: str) -> TrainConfig:
        return config_from_args(build_parser().parse_args(["train", "shm", "--out", str(tmp_path), *flags]))

    assert cfg("--time-limit", "7.5").time_limit == 7.5 and cfg().time_limit == 0.0
    with pytest.raises(SettingsError, match="--time-limit"):
        cfg("--time-limit", "-1")
    assert cli_main(["train", "shm", "--time-limit", "-1", "--out", str(tmp_path / "x")]) == 2


def test_ema_update_hand_values() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    avg = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
        avg[0].weight.copy_(torch.tensor([[5.0, -2.0]]))
        model[1].running_mean.fill_(4.0)
        model[1].num_batches_tracked.fill_(7)
    ema_update(avg, model, 0.75)
    assert avg[0].weight.tolist() == [[4.0, -1.0]]  # 0.75·avg + 0.25·model
    assert avg[1].running_mean.tolist() == [1.0]  # BN statistics are averaged too
    assert int(avg[1].num_batches_tracked) == 7  # integer buffers are copied
    assert model[0].weight.tolist() == [[1.0, 2.0]]  # the trained model is untouched


def test_ema_run_exports_the_average_of_the_raw_trajectory(tmp_path: Path) -> None:
    """Constant lr (no warm-up, no decay): the raw weights after k steps do not depend on the run's length, so the
    exported average of a 3-step run with decay 0.5 must equal 0.5-EMA over the raw weights of 1-, 2- and 3-step
    runs; the raw weights must be those of a run without EMA (averaging never feeds back into training)."""
    flat = {"warmup": 0, "min_lr_ratio": 1.0}
    raw = [torch.load(tmp_path / f"raw{k}" / "run" / "last.pt", weights_only=True)["state_dict"]
           for k in (1, 2, 3) if train(_cfg(tmp_path / f"raw{k}", steps=k, **flat), quiet=True)]
    cfg = _cfg(tmp_path / "ema", steps=3, ema=0.5, **flat)
    train(cfg, quiet=True)
    ck = torch.load(tmp_path / "ema" / "run" / "last.pt", weights_only=True)
    task = make_task(cfg)
    torch.manual_seed(cfg.seed)
    expect = {k: v.clone() for k, v in task.build().state_dict().items()}
    for w in raw:
        for k, v in expect.items():
            expect[k] = 0.5 * v + 0.5 * w[k] if v.is_floating_point() else w[k].clone()
    for k, v in expect.items():
        torch.testing.assert_close(ck["state_dict"][k], v, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(ck["train_state_dict"][k], raw[-1][k], rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(ck["state_dict"][k], raw[-1][k]) for k in expect)
    build_shm(str(tmp_path / "ema" / "run" / "last.pt"))  # the average is the deployable checkpoint


def test_ema_run_resumes_with_its_average(tmp_path: Path) -> None:
    full = train(_cfg(tmp_path / "a", steps=6, ckpt_every=3, ema=0.9), quiet=True)
    straight = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)

    class Stop(Exception):
        pass

    def stop_at(step: int, terms: dict[str, float]) -> None:
        if step == 4:
            raise Stop

    with pytest.raises(Stop):
        train(_cfg(tmp_path / "b", steps=6, ckpt_every=3, ema=0.9), quiet=True, on_step=stop_at)
    resumed = train(_cfg(tmp_path / "b", steps=6, ckpt_every=3, ema=0.9, resume=True), quiet=True)
    np.testing.assert_allclose(resumed["losses"], full["losses"], rtol=1e-4, atol=1e-5)
    ck = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)
    for k, v in straight["state_dict"].items():
        torch.testing.assert_close(ck["state_dict"][k], v, rtol=1e-4, atol=1e-6)


def test_ema_flag_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("1.0", "-0.1"):
        assert cli_main(["train", "shm", "--ema", bad, "--out", str(tmp_path / "run")]) == 2
        assert "'--ema'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_init_fine_tunes_from_weights(tmp_path: Path) -> None:
    train(_cfg(tmp_path / "a", steps=2, ckpt_every=2), quiet=True)
    src = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)["state_dict"]
    seen: list[int] = []
    cfg = _cfg(tmp_path / "b", steps=1, lr=0.0, warmup=0, init=str(tmp_path / "a" / "run" / "last.pt"),
               sample_scale=(2.0, 3.0), crops_per_sample=2)
    train(cfg, quiet=True, on_step=lambda s, t: seen.append(s))
    assert seen == [1]  # a new step count
    out = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["state_dict"]
    assert torch.equal(out["head.4.weight"], src["head.4.weight"])  # lr 0: the initial weights are kept


def test_reset_head_starts_from_the_base(tmp_path: Path) -> None:
    train(_cfg(tmp_path / "a", steps=2, ckpt_every=2), quiet=True)
    src = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)["state_dict"]
    assert float(src["head.4.weight"].abs().sum()) > 0
    cfg = _cfg(tmp_path / "b", steps=1, lr=0.0, warmup=0, init=str(tmp_path / "a" / "run" / "last.pt"), reset_head=True)
    train(cfg, quiet=True)
    out = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=True)["state_dict"]
    assert float(out["head.4.weight"].abs().sum()) == 0.0
    assert torch.equal(out["head.2.weight"], src["head.2.weight"])  # only the last conv is reset
    with pytest.raises(SettingsError, match="--reset-head"):
        train(_cfg(tmp_path / "c", steps=1, reset_head=True), quiet=True)


def test_freeze_bn_keeps_the_initial_statistics(tmp_path: Path) -> None:
    """With ``freeze_bn`` a fine-tune (validation included, which flips modules back to train mode) leaves every
    batch-norm buffer of ``init`` untouched while the weights, BN scale and shift included, still learn; without it
    the same fine-tune moves the statistics."""
    train(_cfg(tmp_path / "a", steps=2, ckpt_every=2), quiet=True)
    init = str(tmp_path / "a" / "run" / "last.pt")
    src = torch.load(init, weights_only=True)["state_dict"]
    stats = [k for k in src if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(stats) > 30
    train(_cfg(tmp_path / "f", steps=3, val_every=2, init=init, freeze_bn=True), quiet=True)
    frozen = torch.load(tmp_path / "f" / "run" / "last.pt", weights_only=True)["state_dict"]
    for k in stats:
        assert torch.equal(frozen[k], src[k]), k
    bn_weights = [k[: -len("running_mean")] + "weight" for k in stats if k.endswith("running_mean")]
    assert any(not torch.equal(frozen[k], src[k]) for k in bn_weights)  # scale still learns
    assert not torch.equal(frozen["head.4.weight"], src["head.4.weight"])
    train(_cfg(tmp_path / "t", steps=3, val_every=2, init=init), quiet=True)
    free = torch.load(tmp_path / "t" / "run" / "last.pt", weights_only=True)["state_dict"]
    assert all(not torch.equal(free[k], src[k]) for k in stats if k.endswith("running_mean"))
    with pytest.raises(SettingsError, match="--freeze-bn"):
        train(_cfg(tmp_path / "c", steps=1, freeze_bn=True), quiet=True)


def test_freeze_bn_flag_reaches_the_config(tmp_path: Path) -> None:
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args

    args = build_parser().parse_args(["train", "shm", "--init", "x.pt", "--freeze-bn", "--out", str(tmp_path)])
    assert config_from_args(args).freeze_bn is True
    args = build_parser().parse_args(["train", "shm", "--out", str(tmp_path)])
    assert config_from_args(args).freeze_bn is False


def test_resume_without_checkpoint_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        train(_cfg(tmp_path, resume=True), quiet=True)


def test_lpn_trains_and_loads_in_prior(tmp_path: Path) -> None:
    from sparsemat.priors.lpn_prior import LpnPrior

    cfg = _cfg(tmp_path, model="lpn", steps=3, crop=64, batch=2, val_every=3, lr=1e-3, warmup=1)
    res = train(cfg, quiet=True)
    assert len(res["losses"]) == 3 and all(np.isfinite(res["losses"]))
    assert "mad_unk" in res["history"][-1]
    prior = LpnPrior(weights=tmp_path / "run" / "best.pt")
    out = prior.predict(torch.rand(1, 3, 64, 96))
    assert out.shape == (1, 1, 64, 96) and prior.last_ctx is not None


def test_train_cli(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    rc = cli_main(["--quiet", "train", "shm", "--steps", "2", "--batch", "1", "--crop", "64", "--lr-factors", "2",
                   "--photos", "none", "--workers", "0", "--val-every", "0", "--out", str(out),
                   "--export", str(tmp_path / "w.pt")])
    assert rc == 0
    assert (out / "last.pt").is_file() and (tmp_path / "w.pt").is_file()
    assert set(torch.load(tmp_path / "w.pt", weights_only=True)) == {"config", "state_dict"}
    assert cli_main(["train", "shm", "--kinds", "nonsense", "--out", str(out)]) == 2
    assert cli_main(["train", "shm", "--soft-edge-prob", "1.5", "--out", str(out)]) == 2
    assert cli_main(["train", "shm", "--texture-case-prob", "-0.1", "--out", str(out)]) == 2
    assert cli_main(["train", "shm", "--flat-weight", "-1", "--out", str(out)]) == 2
    assert cli_main(["train", "shm", "--flat-window", "4", "--out", str(out)]) == 2
    assert cli_main(["train", "shm", "--flat-contrast", "0", "--out", str(out)]) == 2


def _first_batch_on_both_paths(**cfg: Any) -> None:
    """Draw step 0's SHM batch through the data worker on the ``training_batch`` path and the composite path."""
    from sparsemat.train import trainer

    for scale, per in (((1.0, 1.6), 1), ((1.0, 2.0), 2)):
        stream = trainer.BatchStream("shm", TrainConfig(batch=2, crop=32, lr_factors=(2,), photos="none", workers=0,
                                                        sample_scale=scale, crops_per_sample=per, **cfg))
        stream.get(0, 1)
        stream.close()


@pytest.fixture
def texture_cases_drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texture cases applied to synthetic composites while the test runs, in order."""
    from sparsemat.train import synth

    cases: list[str] = []
    real = synth.apply_texture_case

    def spy(rng: np.random.Generator, case: str, *args: object) -> object:
        cases.append(case)
        return real(rng, case, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(synth, "apply_texture_case", spy)
    return cases


def test_soft_edge_prob_reaches_the_composites(monkeypatch: pytest.MonkeyPatch) -> None:
    """``TrainConfig.soft_edge_prob`` is what the data worker hands to every synthetic composite."""
    from sparsemat.train import synth

    seen: list[float] = []
    real = synth.make_subject

    def spy(*args: object, **kw: object) -> object:
        seen.append(float(args[3]))  # type: ignore[arg-type]
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(synth, "make_subject", spy)
    _first_batch_on_both_paths(soft_edge_prob=0.9)
    assert seen and set(seen) == {0.9}


def test_texture_case_prob_reaches_the_composites(texture_cases_drawn: list[str]) -> None:
    """``TrainConfig.texture_case_prob`` 1 makes every synthetic composite a texture case, 0 none."""
    from sparsemat.train import synth

    _first_batch_on_both_paths(texture_case_prob=0.0)
    assert texture_cases_drawn == []
    _first_batch_on_both_paths(texture_case_prob=1.0)
    assert len(texture_cases_drawn) == 3  # 2 composites + 1 (2 crops from one)
    assert set(texture_cases_drawn) <= set(synth.TEXTURE_CASES)


def test_texture_cases_reach_the_composites(texture_cases_drawn: list[str]) -> None:
    """``TrainConfig.texture_cases`` picks the cases drawn, on both batch paths."""
    _first_batch_on_both_paths(texture_case_prob=1.0, texture_cases=("camouflage",))
    assert texture_cases_drawn == ["camouflage"] * 3


def test_texture_cases_flag() -> None:
    """``--texture-cases`` parses a comma list (repeats kept), refuses unknown names and defaults to none given."""
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args

    base = ["train", "shm", "--out", "x"]
    assert config_from_args(build_parser().parse_args(base)).texture_cases == ()
    cfg = config_from_args(build_parser().parse_args([*base, "--texture-cases", "camouflage,camouflage,fabric"]))
    assert cfg.texture_cases == ("camouflage", "camouflage", "fabric")
    with pytest.raises(SettingsError, match="plaid.*camouflage"):
        config_from_args(build_parser().parse_args([*base, "--texture-cases", "fabric,plaid"]))


# ------------------------------------------------------------------------------------------- data layouts
def _write(path: Path, px: np.ndarray) -> None:
    px = px if px.ndim == 3 else px[..., None]
    spec = oiio.ImageSpec(px.shape[1], px.shape[0], px.shape[2], oiio.UINT8)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    assert out.write_image(np.ascontiguousarray(px, dtype=np.float32))
    out.close()


def _matte(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.clip((20 - np.hypot(yy - h / 2, xx - w / 2)) / 4, 0, 1).astype(np.float32)


def test_aim_layout_composites(tmp_path: Path) -> None:
    for d in ("fg", "alpha", "bg"):
        (tmp_path / d).mkdir()
    for name in ("a", "b"):
        _write(tmp_path / "fg" / f"{name}.png", np.full((60, 70, 3), (1.0, 0.0, 0.0), np.float32))
        _write(tmp_path / "alpha" / f"{name}.png", _matte(60, 70))
    _write(tmp_path / "bg" / "bg.png", np.full((90, 90, 3), (0.0, 0.0, 1.0), np.float32))
    src = make_source(f"aim:{tmp_path / 'fg'},{tmp_path / 'alpha'},{tmp_path / 'bg'}")
    assert isinstance(src, AimSource)
    b = src.shm_batch(np.random.default_rng(0), 3, 32, 2, None)
    assert b["rgb"].shape == (3, 3, 32, 32) and b["lr_prior"].shape == (3, 1, 16, 16)
    # I = aF + (1-a)B with F pure red and B pure blue: red channel equals alpha
    np.testing.assert_allclose(b["rgb"][:, 0], b["alpha"][:, 0], atol=2 / 255)
    np.testing.assert_allclose(b["rgb"][:, 2], 1 - b["alpha"][:, 0], atol=2 / 255)
    assert (b["alpha"] > 0.05).any() and (b["alpha"] < 0.95).any()
    lp = src.lpn_batch(np.random.default_rng(0), 2, 64)
    assert lp["rgb"].shape == (2, 3, 64, 64) and lp["alpha"].shape == (2, 1, 64, 64)
    (tmp_path / "alpha" / "b.png").unlink()
    with pytest.raises(InputError, match="b.png"):
        make_source(f"aim:{tmp_path / 'fg'},{tmp_path / 'alpha'},{tmp_path / 'bg'}")


def test_vm240k_layout(tmp_path: Path) -> None:
    for clip in ("0000", "0001"):
        (tmp_path / "fgr" / clip).mkdir(parents=True)
        (tmp_path / "pha" / clip).mkdir(parents=True)
        for f in range(2):
            _write(tmp_path / "fgr" / clip / f"{f:05d}.png", np.full((50, 60, 3), 0.5, np.float32))
            _write(tmp_path / "pha" / clip / f"{f:05d}.png", _matte(50, 60))
    src = make_source(f"vm240k:{tmp_path}", photos="none")
    assert isinstance(src, VideoMatteSource) and len(src.items) == 4
    b = src.shm_batch(np.random.default_rng(1), 2, 48, 4, ["blur"], fixed_kinds=True)
    assert b["rgb"].shape == (2, 3, 48, 48) and b["lr_rgb"].shape == (2, 3, 12, 12)
    assert b["alpha"].max() > 0.9
    with pytest.raises(InputError, match="fgr/ and pha/"):
        make_source(f"vm240k:{tmp_path / 'fgr'}")
    with pytest.raises(SettingsError):
        make_source("bogus:x")


def test_data_worker_exits_when_its_trainer_is_gone() -> None:
    """A worker whose recorded parent is not its parent any more (trainer killed) ends itself."""
    import subprocess
    import sys
    import time

    code = (
        "import os, time\n"
        "from sparsemat.train.trainer import _exit_with_parent\n"
        "_exit_with_parent(os.getppid() + 999999)\n"  # not our parent: as if the trainer had died
        "time.sleep(30)\n"
        "raise SystemExit(3)\n"
    )
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == 0  # ended by the watchdog, not by reaching the end
    assert time.monotonic() - t0 < 25


def test_batches_mark_texture_case_crops() -> None:
    """Every SHM batch path carries ``texture [B, 1]``: all ones when every composite is a texture case, all zeros
    when none is, and the flag does not change the crops drawn (same seed, same pixels)."""
    from sparsemat.train.datasets import SyntheticSource
    from sparsemat.train.synth import make_sample, training_batch

    assert make_sample(3, (96, 96), texture_case_prob=1.0).texture_case is True
    assert make_sample(3, (96, 96)).texture_case is False
    src = SyntheticSource([])
    for whole_view in (False, True):
        for p, want in ((1.0, 1.0), (0.0, 0.0)):
            b = src.shm_batch(np.random.default_rng(5), 3, 64, 2, ["down4"], sample_scale=(1.0, 1.2),
                              crops_per_sample=2, whole_view=whole_view, texture_case_prob=p)
            assert b["texture"].shape == (3, 1) and np.all(b["texture"] == want), (whole_view, p)
    plain = training_batch(np.random.default_rng(2), 2, 64, lr_factor=2, texture_case_prob=1.0)
    assert plain["texture"].shape == (2, 1) and bool(torch.all(plain["texture"] == 1.0))
    a = src.shm_batch(np.random.default_rng(9), 2, 64, 2, ["blur"], texture_case_prob=0.5)
    b = src.shm_batch(np.random.default_rng(9), 2, 64, 2, ["blur"], texture_case_prob=0.5)
    assert np.array_equal(a["rgb"], b["rgb"]) and np.array_equal(a["texture"], b["texture"])


def test_batches_name_each_crops_degradation_kind() -> None:
    """Every SHM batch path carries ``kind [B, K]``, the one-hot of the degradation each crop's prior went through;
    on the default path a batch drawn with no kinds named is the batch drawn with all of them (the kind is drawn
    by the same call)."""
    from sparsemat.train.datasets import SyntheticSource
    from sparsemat.train.synth import PRIOR_KINDS, kind_onehot, training_batch

    assert kind_onehot("noise").tolist() == [float(k == "noise") for k in PRIOR_KINDS]
    src = SyntheticSource([])
    for kw in ({}, {"sample_scale": (1.0, 1.2), "crops_per_sample": 2},
               {"sample_scale": (1.0, 1.2), "crops_per_sample": 2, "whole_view": True}):
        b = src.shm_batch(np.random.default_rng(5), 3, 64, 2, ["erode", "noise", "combo"], fixed_kinds=True, **kw)
        assert b["kind"].shape == (3, len(PRIOR_KINDS)), kw
        assert [PRIOR_KINDS[i] for i in b["kind"].argmax(1)] == ["erode", "noise", "combo"], kw
        assert np.all(b["kind"].sum(1) == 1.0), kw
    named = src.shm_batch(np.random.default_rng(8), 4, 64, 2, None)
    every = src.shm_batch(np.random.default_rng(8), 4, 64, 2, list(PRIOR_KINDS))
    assert set(named) == set(every)
    for k in named:
        assert np.array_equal(named[k], every[k]), k
    assert np.all(named["kind"].sum(1) == 1.0)
    crops = src.shm_batch(np.random.default_rng(8), 4, 64, 2, None, sample_scale=(1.0, 1.2), crops_per_sample=2)
    assert crops["kind"].shape == (4, len(PRIOR_KINDS)) and np.all(crops["kind"].sum(1) == 1.0)
    plain = training_batch(np.random.default_rng(2), 2, 64, lr_factor=2, kinds=["blur"])
    assert plain["kind"].argmax(1).tolist() == [PRIOR_KINDS.index("blur")] * 2


def test_distill_skip_kinds_leave_those_crops_out(tmp_path: Path) -> None:
    """With ``distill_skip_kinds`` both distillation terms leave out the crops of those kinds exactly as they leave
    out texture cases; naming every kind in the batch leaves nothing to distil; the flag reaches the config, unknown
    kinds are refused, and so is the flag without a distillation term."""
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args

    task, student, batch, _ = _student_and_teacher(tmp_path, distill_weight=1.0, distill_grad_weight=1.0)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.3 * torch.randn_like(p))

    def terms(t: Any, b: dict[str, torch.Tensor]) -> tuple[float, float]:
        x, band, _ = t.inputs(student, b)
        with torch.no_grad():
            out = student(x, b["lr_rgb"], b["lr_prior"])
        blend = band * out.alpha.features + (1.0 - band) * b["prior_hr"]
        return float(t.distill_loss(out.alpha, x, b)), float(t.distill_grad_loss(blend, band, x, b))

    full = terms(task, batch)
    assert min(full) > 1e-3
    skip = _replace_cfg(task, distill_skip_kinds=("dilate",))  # item 0 is dilate, item 1 blur
    as_texture = {**batch, "texture": torch.tensor([[1.0], [0.0]])}
    assert terms(skip, batch) == terms(task, as_texture)
    assert terms(skip, batch) != full
    assert terms(_replace_cfg(task, distill_skip_kinds=("erode",)), batch) == full  # no crop of that kind
    assert terms(_replace_cfg(task, distill_skip_kinds=("dilate", "blur")), batch) == (0.0, 0.0)
    args = build_parser().parse_args(["train", "shm", "--init", "x.pt", "--distill-weight", "1",
                                      "--distill-skip-kinds", "noise,combo", "--out", str(tmp_path)])
    assert config_from_args(args).distill_skip_kinds == ("noise", "combo")
    assert config_from_args(build_parser().parse_args(["train", "shm", "--out", str(tmp_path)])).distill_skip_kinds == ()
    assert cli_main(["train", "shm", "--distill-skip-kinds", "noise,smudge", "--out", str(tmp_path / "k")]) == 2
    assert not (tmp_path / "k").exists()
    with pytest.raises(SettingsError, match="--distill-skip-kinds"):
        train(_cfg(tmp_path / "c", steps=1, distill_skip_kinds=("noise",)), quiet=True)
    assert not (tmp_path / "c").exists()


def _replace_cfg(task: Any, **kw: object) -> Any:
    """A copy of the ShmTask ``task`` (same teacher) with ``kw`` replaced in its config."""
    import copy
    from dataclasses import replace

    other = copy.copy(task)
    other.cfg = replace(task.cfg, **kw)
    return other


def _student_and_teacher(tmp_path: Path, **kw: object) -> tuple[Any, torch.nn.Module, dict[str, torch.Tensor], str]:
    """A distillation ShmTask (``kw`` into its config) whose teacher and student (eval mode) both hold the weights of
    a 2-step run, the ``init`` checkpoint's path and a test batch."""
    from sparsemat.train.trainer import ShmTask

    train(_cfg(tmp_path / "a", steps=2, ckpt_every=2), quiet=True)
    init = str(tmp_path / "a" / "run" / "last.pt")
    task = ShmTask(_cfg(tmp_path / "d", init=init, **kw))
    sd = torch.load(init, weights_only=True)["state_dict"]
    student, teacher = task.build(), task.build()
    student.load_state_dict(sd)
    teacher.load_state_dict(sd)
    student.eval()
    task.teacher = teacher.eval()
    return task, student, {k: torch.from_numpy(v) for k, v in _shm_test_batch().items()}, init


def test_distill_loss_pulls_towards_the_teacher_outside_texture_cases(tmp_path: Path) -> None:
    """The distillation term is the Charbonnier floor (sqrt(eps) per site) when student and teacher agree, grows
    when they differ, ignores texture-case items, and a distilled fine-tune stays closer to its teacher's output
    than the same fine-tune without it."""
    task, student, batch, init = _student_and_teacher(tmp_path, distill_weight=1.0)
    x = task.inputs(student, batch)[0]  # the student's sparse input, which the teacher reads too
    with torch.no_grad():
        out = task.forward(student, batch).out
    same = float(task.distill_loss(out.alpha, x, batch))
    assert same < 1.01e-3  # sqrt(1e-6) per site, normalised by (sites + 1)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.3 * torch.randn_like(p))
        out = task.forward(student, batch).out
    moved = float(task.distill_loss(out.alpha, x, batch))
    assert moved > 5 * same
    batch["texture"] = torch.ones(batch["texture"].shape)
    assert float(task.distill_loss(out.alpha, x, batch)) == 0.0  # every item a texture case: nothing to distil
    # a fine-tune with the pull ends nearer its teacher than the same fine-tune without it
    far = train(_cfg(tmp_path / "f", steps=6, init=init, lr=2e-2, warmup=1), quiet=True)
    near = train(_cfg(tmp_path / "n", steps=6, init=init, lr=2e-2, warmup=1, distill_weight=20.0), quiet=True)
    assert far["losses"] and near["losses"]
    gaps = []
    for run in ("f", "n"):
        m = task.build()
        m.load_state_dict(torch.load(tmp_path / run / "run" / "last.pt", weights_only=True)["state_dict"])
        m.eval()
        plain = {**batch, "texture": 0 * batch["texture"]}
        with torch.no_grad():
            gaps.append(float(task.distill_loss(task.forward(m, plain).out.alpha, task.inputs(m, plain)[0], plain)))
    assert gaps[1] < gaps[0], gaps
    with pytest.raises(SettingsError, match="--distill-weight"):
        train(_cfg(tmp_path / "c", steps=1, distill_weight=1.0), quiet=True)
    assert not (tmp_path / "c").exists()


def test_distill_grad_loss_matches_the_teachers_edges_outside_texture_cases(tmp_path: Path) -> None:
    """The gradient pull is exactly 0 when student and teacher agree, positive when they differ, 0 when every item
    is a texture case; a run with it trains and logs the term, and it is refused without --init."""
    task, student, batch, init = _student_and_teacher(tmp_path, distill_grad_weight=1.0)

    def grad_gap() -> float:
        x, band, _ = task.inputs(student, batch)
        with torch.no_grad():
            alpha = student(x, batch["lr_rgb"], batch["lr_prior"]).alpha.features
        blend = band * alpha + (1.0 - band) * batch["prior_hr"]
        return float(task.distill_grad_loss(blend, band, x, batch))

    assert grad_gap() == 0.0
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.3 * torch.randn_like(p))
    assert grad_gap() > 1e-3
    batch["texture"] = torch.ones(batch["texture"].shape)
    assert grad_gap() == 0.0  # every item a texture case: nothing to distil
    seen: list[dict[str, float]] = []
    train(_cfg(tmp_path / "g", steps=2, init=init, distill_grad_weight=1.0), quiet=True,
          on_step=lambda step, terms: seen.append(terms))
    assert len(seen) == 2 and all("distill_grad" in t and "distill" not in t for t in seen), seen
    with pytest.raises(SettingsError, match="--distill-grad-weight"):
        train(_cfg(tmp_path / "c", steps=1, distill_grad_weight=1.0), quiet=True)
    assert not (tmp_path / "c").exists()


def _shm_test_batch() -> dict[str, np.ndarray]:
    from sparsemat.train.datasets import SyntheticSource

    return SyntheticSource([]).shm_batch(np.random.default_rng(4), 2, 64, 2, ["dilate", "blur"], fixed_kinds=True)


def test_distill_weight_flag_reaches_the_config(tmp_path: Path) -> None:
    from sparsemat.cli.main import build_parser
    from sparsemat.cli.train_cmd import config_from_args

    args = build_parser().parse_args(["train", "shm", "--init", "x.pt", "--distill-weight", "0.5", "--out", str(tmp_path)])
    assert config_from_args(args).distill_weight == 0.5
    args = build_parser().parse_args(["train", "shm", "--out", str(tmp_path)])
    assert config_from_args(args).distill_weight == 0.0
    assert cli_main(["train", "shm", "--distill-weight", "-1", "--out", str(tmp_path / "x")]) == 2
    args = build_parser().parse_args(["train", "shm", "--init", "x.pt", "--distill-grad-weight", "2", "--out", str(tmp_path)])
    assert config_from_args(args).distill_grad_weight == 2.0
    assert cli_main(["train", "shm", "--distill-grad-weight", "-1", "--out", str(tmp_path / "y")]) == 2


def test_sample_levels_are_trained_stored_and_inherited(tmp_path: Path) -> None:
    """``--sample-levels`` reaches the whole views' colour estimates, is stored in the checkpoint so that
    ``build_shm`` runs the model with it, and a fine-tune from that checkpoint keeps it unless told otherwise."""
    from sparsemat.train import trainer

    kw: dict[str, Any] = dict(config="lite_cs", steps=1, ckpt_every=1, whole_view=True, sample_scale=(2.0, 3.0),
                              crops_per_sample=2)
    train(_cfg(tmp_path / "a", sample_levels=(0.8, 0.2), **kw), quiet=True)
    ckpt = torch.load(tmp_path / "a" / "run" / "last.pt", weights_only=True)
    assert ckpt["config"]["sample_levels"] == (0.8, 0.2) and ckpt["config"]["colour_samples"] is True
    assert build_shm(tmp_path / "a" / "run" / "last.pt").cfg.sample_levels == (0.8, 0.2)
    init = str(tmp_path / "a" / "run" / "last.pt")
    assert trainer.resolve_sample_levels(_cfg(tmp_path / "b", init=init, **kw)).sample_levels == (0.8, 0.2)
    assert trainer.resolve_sample_levels(_cfg(tmp_path / "b", init=init, sample_levels=(0.9, 0.1), **kw)
                                         ).sample_levels == (0.9, 0.1)
    train(_cfg(tmp_path / "c", **kw), quiet=True)  # the registered levels: the checkpoint names its variant
    assert torch.load(tmp_path / "c" / "run" / "last.pt", weights_only=True)["config"] == "lite_cs"
    streams = {lv: trainer.BatchStream("shm", _cfg(tmp_path / "d", sample_levels=lv, batch=2, crop=32, **{
        k: v for k, v in kw.items() if k != "config"})) for lv in ((0.98, 0.02), (0.6, 0.4))}
    batches = {lv: s.get(0, 1) for lv, s in streams.items()}
    for s in streams.values():
        s.close()
    a, b = batches[(0.98, 0.02)], batches[(0.6, 0.4)]
    assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["lr_prior"], b["lr_prior"])  # the same crops ...
    assert float((a["est"] - b["est"]).abs().max()) > 0.01  # ... with the estimates of their own levels
    with pytest.raises(SettingsError, match="--sample-levels"):
        trainer.resolve_sample_levels(_cfg(tmp_path / "e", sample_levels=(0.2, 0.8)))
    assert cli_main(["train", "shm", "--sample-levels", "0.2,0.8", "--out", str(tmp_path / "f")]) == 2
    assert cli_main(["train", "shm", "--sample-levels", "0.9", "--out", str(tmp_path / "g")]) == 2


def test_widened_fine_tune_starts_where_its_init_stands(tmp_path: Path) -> None:
    """At learning rate 0, a fine-tune of the wider ``lite_csw`` from a narrow checkpoint sees exactly the losses of
    the same fine-tune at the checkpoint's own widths — distillation included, so its teacher is the checkpoint at
    its own widths — and under ``freeze_bn`` the new channels' statistics are measured, the old ones kept."""
    train(_cfg(tmp_path / "a", steps=2, ckpt_every=2), quiet=True)
    init = str(tmp_path / "a" / "run" / "last.pt")
    kw: dict[str, object] = dict(steps=1, lr=0.0, warmup=0, init=init, freeze_bn=True, distill_weight=1.0, distill_grad_weight=1.0)
    terms: dict[str, dict[str, float]] = {}
    for name in ("lite_cs", "lite_csw"):
        train(_cfg(tmp_path / name, config=name, **kw), quiet=True, on_step=lambda s, t, n=name: terms.update({n: t}))
    assert set(terms["lite_cs"]) >= {"distill", "distill_grad", "lap"}
    for k, v in terms["lite_cs"].items():
        assert terms["lite_csw"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    src = torch.load(init, weights_only=True)["state_dict"]
    out = torch.load(tmp_path / "lite_csw" / "run" / "last.pt", weights_only=True)["state_dict"]
    assert out["layer4.1.bn2.running_var"].shape == (144,)
    assert torch.equal(out["layer4.1.bn2.running_var"][:96], src["layer4.1.bn2.running_var"])
    assert not torch.allclose(out["layer4.1.bn2.running_var"][96:], torch.ones(48))
