"""Synthetic data generator: determinism, ranges, fractional alpha, priors, sequences, training crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sparsemat.train import synth

SIZE = (96, 128)


def test_sample_deterministic_and_in_range():
    a = synth.make_sample(7, SIZE)
    b = synth.make_sample(np.random.default_rng(7), SIZE)
    c = synth.make_sample(8, SIZE)
    for x, y in ((a.rgb, b.rgb), (a.alpha, b.alpha), (a.fg, b.fg), (a.bg, b.bg)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.rgb, c.rgb)
    assert a.rgb.shape == a.fg.shape == a.bg.shape == (*SIZE, 3) and a.alpha.shape == SIZE
    for arr in (a.rgb, a.alpha, a.fg, a.bg):
        assert arr.dtype == np.float32 and arr.min() >= 0.0 and arr.max() <= 1.0 and np.isfinite(arr).all()


def test_composite_equation_holds_in_srgb():
    s = synth.make_sample(3, SIZE)
    a = s.alpha[..., None]
    np.testing.assert_allclose(s.rgb, a * s.fg + (1 - a) * s.bg, atol=1e-5)
    lin = synth.make_sample(3, SIZE, linear=True)
    assert lin.rgb.min() >= 0.0 and lin.rgb.max() <= 1.0
    np.testing.assert_array_equal(lin.alpha, s.alpha)


def test_fractional_alpha_and_strands_present():
    fractional = []
    for seed in range(6):
        s = synth.make_sample(seed, (128, 128))
        fractional.append(((s.alpha > 0) & (s.alpha < 1)).mean())
        assert (s.alpha == 0).any()  # some pure background
    assert min(fractional) > 0.0 and np.mean(fractional) > 0.01
    subj = next(s for s in (synth.make_subject(k, (256, 256)) for k in range(20)) if s.strands is not None)
    st = subj.strands
    assert st is not None and len(st.length) >= 8
    assert st.width.min() >= 0.25 and st.width.max() <= 3.0
    assert st.opacity.min() >= 0.3 and st.opacity.max() <= 1.0
    cov = synth._render_strands(st, subj.pose, subj.size, 0.0)
    assert ((cov > 0) & (cov < 1)).sum() > 100  # thin anti-aliased strands give fractional coverage


def test_soft_edge_prob_sets_the_share_of_defocused_bodies():
    soft = [synth.make_subject(k, (512, 512), None, 1.0).softness for k in range(12)]
    sharp = [synth.make_subject(k, (512, 512), None, 0.0).softness for k in range(12)]
    assert min(soft) >= 2.0 and max(soft) <= 24.0 and set(sharp) == {1.0}
    default = [synth.make_subject(k, (512, 512)).softness for k in range(40)]
    assert 0 < sum(s > 1.0 for s in default) < 20  # about a quarter by default
    np.testing.assert_array_equal(synth.make_sample(5, SIZE).alpha,
                                  synth.make_sample(5, SIZE, soft_edge_prob=synth.SOFT_EDGE_PROB).alpha)


def test_texture_cases_make_what_they_say():
    size = (256, 320)
    sharp = next(k for k in range(40) if synth.make_subject(k, size).softness == 1.0)
    subj = synth.make_subject(sharp, size)
    tex = subj.body_tex.copy()
    bg = synth.make_background(1, size)
    out = synth.apply_texture_case(np.random.default_rng(0), "textured_soft_body", subj, bg, None)
    assert out is bg and 2.0 * 0.5 <= subj.softness <= 24.0 * 0.5  # res = 256 / 512
    assert not np.array_equal(subj.body_tex, tex)
    plain = next(k for k in range(40) if synth.make_subject(k, size).fabric is None)
    subj = synth.make_subject(plain, size)
    synth.apply_texture_case(np.random.default_rng(0), "fabric", subj, bg, None)
    assert subj.fabric is not None and subj.fabric_tex is not None
    alpha, _ = synth.render_subject(subj)
    assert ((alpha > 0.05) & (alpha < 0.95)).mean() > 0.01  # the semi-transparent weave
    exact = 0
    for seed in range(24):  # the background becomes the stripe generator's texture, defocused 30 % of the time
        subj = synth.make_subject(plain, size)
        striped = synth.apply_texture_case(np.random.default_rng(seed), "patterned_background", subj, bg, None)
        stripes = synth.generated_texture(np.random.default_rng(seed), size, kind=2)
        exact += int(np.array_equal(striped, stripes))
        assert striped.shape == bg.shape and np.corrcoef(striped.ravel(), stripes.ravel())[0, 1] > 0.9
    assert 0 < exact < 24
    with pytest.raises(ValueError, match="unknown texture case 'plaid'"):
        synth.apply_texture_case(np.random.default_rng(0), "plaid", subj, bg, None)


def test_camouflage_dresses_the_body_in_the_background():
    """The body's texture is the background's (aligned or flipped), tinted; only colour tells them apart."""
    size = (256, 320)
    bg = synth.generated_texture(np.random.default_rng(5), size, kind=2)  # stripes: each flip looks different
    grey = bg.mean(axis=2)
    views = {(): grey, (0,): grey[::-1], (1,): grey[:, ::-1], (0, 1): grey[::-1, ::-1]}
    aligned = 0
    for seed in range(12):
        subj = synth.make_subject(3, size)
        out = synth.apply_texture_case(np.random.default_rng(seed), "camouflage", subj, bg, None)
        assert out is bg and 1.0 * 0.5 <= subj.softness <= 16.0 * 0.5  # res = 256 / 512
        tex = subj.body_tex.mean(axis=2)
        corr = {f: np.corrcoef(tex.ravel(), v.ravel())[0, 1] for f, v in views.items()}
        best = max(corr, key=lambda f: corr[f])
        assert corr[best] > 0.8, corr  # the same texture under a colour jitter
        assert np.abs(subj.body_tex - bg[(slice(None, None, -1) if 0 in best else slice(None),
                                          slice(None, None, -1) if 1 in best else slice(None))]).mean() > 0.02  # tinted
        aligned += int(best == ())
    assert 2 <= aligned <= 10  # aligned about half the time
    other = synth.make_subject(3, size)
    synth.apply_texture_case(np.random.default_rng(0), "textured_soft_body", other, bg, None)
    assert abs(np.corrcoef(other.body_tex.mean(axis=2).ravel(), grey.ravel())[0, 1]) < 0.5


def test_texture_cases_choose_what_is_drawn():
    """None and the default tuple draw the same composites; a list with camouflage only draws camouflage."""
    for seed in range(3):
        np.testing.assert_array_equal(synth.make_sample(seed, SIZE, texture_case_prob=0.5).rgb,
                                      synth.make_sample(seed, SIZE, texture_case_prob=0.5,
                                                        texture_cases=synth.TEXTURE_CASES).rgb)
    assert "camouflage" in synth.ALL_TEXTURE_CASES and "camouflage" not in synth.TEXTURE_CASES
    camo = synth.make_sample(4, SIZE, texture_case_prob=1.0, texture_cases=("camouflage",))
    assert camo.texture_case and not np.array_equal(camo.rgb, synth.make_sample(4, SIZE, texture_case_prob=1.0).rgb)
    s = camo.alpha[..., None]
    np.testing.assert_allclose(camo.rgb, s * camo.fg + (1 - s) * camo.bg, atol=1e-5)
    with pytest.raises(ValueError, match="unknown texture case 'plaid'.*camouflage"):
        synth.make_sample(4, SIZE, texture_case_prob=1.0, texture_cases=("plaid",))


def test_texture_case_prob_keeps_the_default_stream_and_changes_samples():
    for seed in range(3):  # prob 0 draws nothing extra: the yardstick's plates stay what they were
        np.testing.assert_array_equal(synth.make_sample(seed, SIZE).rgb,
                                      synth.make_sample(seed, SIZE, texture_case_prob=0.0).rgb)
    a = synth.make_sample(4, SIZE, texture_case_prob=1.0)
    b = synth.make_sample(4, SIZE, texture_case_prob=1.0)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, synth.make_sample(4, SIZE).rgb)
    s = a.alpha[..., None]
    np.testing.assert_allclose(a.rgb, s * a.fg + (1 - s) * a.bg, atol=1e-5)


def test_strand_counts_scale_with_resolution():
    small = synth.make_subject(11, (256, 256)).strands
    large = synth.make_subject(11, (1024, 1024)).strands
    assert small is not None and large is not None, "seed 11 draws a stranded subject at both sizes"
    assert len(large.length) > 2 * len(small.length)
    assert large.width.max() <= 3.0  # widths stay in pixels: fine hair at any resolution


def test_photos_used_when_given():
    rng = np.random.default_rng(0)
    photos = [rng.random((300, 400, 3)).astype(np.float32), rng.random((80, 60, 3)).astype(np.float32)]
    s = synth.make_sample(5, SIZE, backgrounds=photos)
    assert s.rgb.shape == (*SIZE, 3) and s.rgb.max() <= 1.0
    assert not np.array_equal(s.bg, synth.make_sample(5, SIZE).bg)


@pytest.mark.parametrize("kind", synth.PRIOR_KINDS)
def test_degrade_prior_kinds(kind):
    alpha = np.zeros((128, 128), np.float32)
    alpha[32:96, 40:100] = 1.0
    alpha[32:96, 39] = 0.5
    p1 = synth.degrade_prior(alpha, 3, kind)
    p2 = synth.degrade_prior(alpha, 3, kind)
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == alpha.shape and p1.dtype == np.float32
    assert p1.min() >= 0.0 and p1.max() <= 1.0
    assert np.abs(p1 - alpha).mean() > 1e-3


def test_degrade_prior_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown prior degradation"):
        synth.degrade_prior(np.zeros((8, 8), np.float32), 0, "jpeg")


def test_lowres_prior_size():
    a = np.zeros((1024, 2048), np.float32)
    assert synth.lowres_prior(a, 512).shape == (512, 1024)
    assert synth.lowres_prior(np.zeros((100, 50), np.float32), 512).shape == (100, 50)


def test_training_batch_shapes_and_consistency():
    b = synth.training_batch(0, 3, 64, lr_factor=4, centre_prob=1.0)
    assert b["rgb"].shape == (3, 3, 64, 64) and b["alpha"].shape == (3, 1, 64, 64)
    assert b["prior_hr"].shape == (3, 1, 64, 64)
    assert b["lr_rgb"].shape == (3, 3, 16, 16) and b["lr_prior"].shape == (3, 1, 16, 16)
    for k in ("rgb", "alpha", "prior_hr", "lr_rgb", "lr_prior", "fg", "bg"):
        assert b[k].dtype == torch.float32 and b[k].min() >= 0 and b[k].max() <= 1
    up = torch.nn.functional.interpolate(b["lr_prior"], size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(b["prior_hr"], up.clamp(0, 1), atol=1e-5, rtol=0)
    a = b["alpha"]
    assert ((a > 0.05) & (a < 0.95)).flatten(1).any(dim=1).all()  # centred on the transition
    again = synth.training_batch(0, 3, 64, lr_factor=4, centre_prob=1.0)
    torch.testing.assert_close(b["rgb"], again["rgb"], atol=0, rtol=0)
    with pytest.raises(ValueError):
        synth.training_batch(0, 1, 60, lr_factor=8)


def test_sequence_locked_keeps_background():
    frames = list(synth.make_sequence(4, SIZE, 4, motion="locked"))
    assert len(frames) == 4
    bg_px = np.all([f.alpha == 0 for f in frames], axis=0)
    assert bg_px.any()
    for f in frames[1:]:
        np.testing.assert_array_equal(f.rgb[bg_px], frames[0].rgb[bg_px])
        np.testing.assert_array_equal(f.bg, frames[0].bg)
    assert any(not np.array_equal(f.alpha, frames[0].alpha) for f in frames[1:])  # the subject moves


def test_sequence_moving_pans_background_and_is_lazy():
    gen = synth.make_sequence(4, SIZE, 3, motion="moving")
    first = next(gen)
    rest = list(gen)
    assert len(rest) == 2
    assert not np.array_equal(first.bg, rest[-1].bg)
    again = list(synth.make_sequence(4, SIZE, 3, motion="moving"))
    np.testing.assert_array_equal(again[2].rgb, rest[-1].rgb)
    with pytest.raises(ValueError):
        next(synth.make_sequence(4, SIZE, 3, motion="dolly"))
