"""Metrics, trimaps, the guided-filter baseline and report tables against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sparsemat.evaluation import guided_filter as gf
from sparsemat.evaluation import metrics as M
from sparsemat.evaluation.report import format_table, mean_rows

P = np.array([[0.0, 0.5], [1.0, 0.25]])
G = np.array([[0.0, 1.0], [0.5, 0.25]])
MASK = np.array([[False, True], [False, False]])


def test_pixel_errors_exact():
    assert M.mad(P, G) == pytest.approx(250.0)  # mean |d| = 0.25, x1e3
    assert M.mse(P, G) == pytest.approx(125.0)  # mean d^2 = 0.125, x1e3
    assert M.sad(P, G) == pytest.approx(1e-3)  # sum |d| = 1.0, /1e3
    assert M.mad(P, G, MASK) == pytest.approx(500.0)
    assert M.mse(P, G, MASK) == pytest.approx(250.0)
    assert M.sad(P, G, MASK) == pytest.approx(0.5e-3)
    with pytest.raises(ValueError):
        M.mad(P, G[:1])


def test_gauss_derivative_kernels_match_rvm():
    g, dg = M.gauss_derivative_kernels(1.4)
    assert len(g) == len(dg) == 9  # half size ceil(1.4 * sqrt(-2 log(sqrt(2 pi) 1.4 0.01))) = 4
    assert np.sqrt((np.outer(g, dg) ** 2).sum()) == pytest.approx(1.0)
    assert dg[4] == 0.0 and dg[0] == -dg[-1]


def test_grad_zero_positive_symmetric():
    rng = np.random.default_rng(0)
    a = np.clip(rng.random((24, 24)), 0, 1)
    b = np.zeros((24, 24))
    b[:, 12:] = 1.0
    assert M.grad(a, a) == 0.0
    assert M.grad(a, b) > 0.0
    assert M.grad(a, b) == pytest.approx(M.grad(b, a))
    # a step of height 1 has a gradient: flat vs step differs only near the edge
    unk = M.unknown_mask(b, 9)
    assert M.grad(np.zeros_like(b), b, unk) == pytest.approx(M.grad(np.zeros_like(b), b), rel=1e-3)


def test_largest_component_numpy_is_4_connected():
    m = np.array([[1, 1, 0, 0],
                  [0, 1, 0, 1],
                  [0, 0, 1, 1],
                  [1, 0, 0, 1]], bool)
    out = M._largest_component_numpy(m)
    expected = np.array([[0, 0, 0, 0],
                         [0, 0, 0, 1],
                         [0, 0, 1, 1],
                         [0, 0, 0, 1]], bool)  # 4 pixels; the diagonal touch does not join the 3-pixel one
    np.testing.assert_array_equal(out, expected)
    assert not M._largest_component_numpy(np.zeros((3, 3), bool)).any()
    rng = np.random.default_rng(1)
    big = rng.random((64, 64)) < 0.55
    lc = M._largest_component_numpy(big)
    np.testing.assert_array_equal(lc, M.largest_component(big))


def test_conn_zero_for_identical_positive_for_island():
    g = np.zeros((16, 16))
    g[4:12, 4:12] = 1.0
    g[4:12, 3] = 0.5
    assert M.conn(g, g) == 0.0
    p = g.copy()
    p[0:2, 14:16] = 1.0  # a disconnected false-positive island
    assert M.conn(p, g) > 0.0
    # island pixels: l = 0, phi(p) = 1 - 1 = 0, phi(g) = 1 -> 4 pixels x 1 / 1e3
    assert M.conn(p, g) == pytest.approx(4e-3)


def test_dtssd_hand_case():
    z = np.zeros((2, 2))
    p1 = np.array([[0.1, 0.0], [0.0, 0.0]])
    # sqrt(0.01 / 4) * 100 = 5
    assert M.dtssd(p1, z, z, z) == pytest.approx(5.0)
    assert M.dtssd(p1, z, p1, z) == 0.0
    assert M.dtssd_sequence([z, p1], [z, z]) == pytest.approx(2.5)  # frame 0 counts as 0
    assert M.dtssd(p1, z, z, z, np.array([[True, False], [False, False]])) == pytest.approx(10.0)


def test_trimap_and_unknown_mask():
    a = np.zeros((10, 10))
    a[:, 5:] = 1.0
    unk = M.unknown_mask(a, 3)
    assert unk[:, 3:7].all() and not unk[:, :3].any() and not unk[:, 7:].any()
    frac = np.zeros((9, 9))
    frac[4, 4] = 0.3
    u = M.unknown_mask(frac, 3)
    assert u.sum() == 9 and u[3:6, 3:6].all()
    tri = M.make_trimap(a, 3)
    assert set(np.unique(tri)) == {0.0, 0.5, 1.0}
    assert tri[0, 0] == 0.0 and tri[0, 9] == 1.0 and tri[0, 5] == 0.5


def test_evaluate_keys_and_regions():
    rng = np.random.default_rng(2)
    g = np.zeros((32, 32))
    g[8:24, 8:24] = 1.0
    p = np.clip(g + 0.1 * rng.standard_normal(g.shape), 0, 1)
    out = M.evaluate(p, g, k=5, prev=(g, g))
    for name in (*M.METRICS, "dtssd"):
        assert name in out and name + "_unk" in out
        assert out[name] >= 0.0
    assert out["sad_unk"] <= out["sad"]
    assert M.evaluate(g, g)["conn"] == 0.0


def test_box_filter_matches_naive():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.random((1, 2, 7, 9)))
    r = 2
    out = gf.box_filter(x, r)
    xn = x.numpy()
    for y in range(7):
        for xx in range(9):
            win = xn[0, :, max(0, y - r):y + r + 1, max(0, xx - r):xx + r + 1]
            np.testing.assert_allclose(out[0, :, y, xx].numpy(), win.mean(axis=(1, 2)), rtol=1e-12)


def test_guided_upsample_constant_and_linear():
    rng = np.random.default_rng(4)
    rgb = rng.random((64, 96, 3)).astype(np.float32)
    const = np.full((8, 12), 0.37)
    np.testing.assert_allclose(gf.guided_upsample(const, rgb), 0.37, atol=1e-5)
    # a linear ramp under a flat guide is reproduced exactly away from the borders
    flat = np.full((64, 96, 3), 0.5, np.float32)
    ramp = np.tile(np.linspace(0.1, 0.9, 12), (8, 1))
    out = gf.guided_upsample(ramp, flat, radius=1)
    ref = gf.bilinear_upsample(ramp, (64, 96))
    m = 4 * 8  # (2r + 2) low-res pixels
    np.testing.assert_allclose(out[m:-m, m:-m], ref[m:-m, m:-m], atol=1e-5)
    assert np.allclose(np.diff(out[32, m:-m]), np.diff(out[32, m:-m])[0], atol=1e-5)


def test_guided_upsample_beats_bilinear_on_edge():
    h, w, f = 96, 128, 8
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    edge = xx < 45.3 + 10 * np.sin(yy / 15.0)
    alpha = edge.astype(np.float32)
    rgb = np.where(edge[..., None], [0.8, 0.3, 0.2], [0.1, 0.3, 0.7]).astype(np.float32)
    lr = alpha.reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    up_gf = gf.guided_upsample(lr, rgb)
    up_bl = gf.bilinear_upsample(lr, (h, w))
    unk = M.unknown_mask(alpha, 9)
    assert M.mad(up_gf, alpha, unk) < 0.5 * M.mad(up_bl, alpha, unk)
    same = gf.guided_filter(rgb, alpha.astype(np.float64), radius=2, eps=1e-4)
    assert np.abs(same - alpha).mean() < 0.02


def test_report_table():
    rows = [{"kind": "down4", "mad": 1.0, "mad_unk": 3.0}, {"kind": "down4", "mad": 3.0, "mad_unk": 5.0},
            {"kind": "blur", "mad": 2.0, "mad_unk": 2.0}]
    agg = mean_rows(rows, ["kind"])
    assert agg[0] == {"kind": "down4", "mad": 2.0, "mad_unk": 4.0, "n": 2}
    table = format_table(agg, ["kind", "mad", "mad_unk", "n"], digits=1)
    lines = table.splitlines()
    assert lines[0] == "| kind | mad x1e3 | mad (unk) x1e3 | n |"
    assert lines[2] == "| down4 | 2.0 | 4.0 | 2 |"


def _rvm_grad(pred: np.ndarray, gt: np.ndarray, sigma: float = 1.4) -> float:
    """Grad as RVM's evaluation code writes it (2-D Gaussian-derivative filter normalised to unit L2,
    correlation with replicated borders, /1000), transcribed independently of the project's implementation."""
    def gaussian(x: np.ndarray, s: float) -> np.ndarray:
        return np.exp(-(x ** 2) / (2 * s ** 2)) / (s * np.sqrt(2 * np.pi))

    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * 1e-2))))
    i = np.arange(-half, half + 1, dtype=np.float64)
    fx = gaussian(i, sigma)[:, None] * (-i * gaussian(i, sigma) / sigma ** 2)[None, :]
    fx /= np.sqrt((fx ** 2).sum())

    def correlate(img: np.ndarray, k: np.ndarray) -> np.ndarray:
        padded = np.pad(img, half, mode="edge")
        out = np.zeros_like(img, dtype=np.float64)
        for dy in range(k.shape[0]):
            for dx in range(k.shape[1]):
                out += k[dy, dx] * padded[dy:dy + img.shape[0], dx:dx + img.shape[1]]
        return out

    def magnitude(img: np.ndarray) -> np.ndarray:
        return np.sqrt(correlate(img, fx) ** 2 + correlate(img, fx.T) ** 2)

    return float(((magnitude(gt.astype(np.float64)) - magnitude(pred.astype(np.float64))) ** 2).sum() / 1000)


def test_grad_absolute_scale_matches_rvm_formula() -> None:
    step = np.zeros((5, 5))
    step[:, 3:] = 1.0
    assert M.grad(np.zeros((5, 5)), step) == pytest.approx(0.096470143, abs=1e-9)
    assert _rvm_grad(np.zeros((5, 5)), step) == pytest.approx(0.096470143, abs=1e-9)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :50]
    gt = np.clip((12 - np.hypot(yy - 20, xx - 25)) / 3 + 0.5, 0, 1)
    pred = np.clip(gt + 0.08 * rng.standard_normal(gt.shape), 0, 1)
    assert M.grad(pred, gt) == pytest.approx(_rvm_grad(pred, gt), rel=1e-9)
