"""Sparse ops: torch backend vs the masked-dense reference (and spconv on CUDA boxes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sparsemat.errors import DeviceError
from sparsemat.sparse import SparseMap, from_coords, get_backend, values
from sparsemat.sparse.layers import SparseBatchNorm
from torch import Tensor, nn

TOL = 1e-4


def irregular_mask(b: int = 2, h: int = 37, w: int = 53, seed: int = 0) -> Tensor:
    """[B, H, W] bool: a thin diagonal band, isolated pixels, image borders, a blob, random sites."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    m = torch.zeros(b, h, w, dtype=torch.bool)
    m[0] |= (yy - xx // 2).abs() <= 1  # thin band
    m[0, 0, :] = True  # top border
    m[0, :, w - 1] = True  # right border
    m[0, h // 7, (3 * w) // 4] = True  # isolated pixel
    m[0, (4 * h) // 5, 3] = True
    ring = ((yy - h / 2) ** 2 + (xx - w / 3) ** 2 - 100).abs() < 20  # circle ring
    m[b - 1] |= ring
    m[b - 1, h - 1, :] = True  # bottom border
    m[b - 1, :, 0] = True  # left border
    m |= torch.rand(b, h, w, generator=g) < 0.05  # scattered sites
    return m


def make(
    mask: Tensor, c: int, seed: int = 1, backend_names: tuple[str, ...] = ("torch", "dense")
) -> dict[str, SparseMap]:
    coords = torch.nonzero(mask)
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(coords.shape[0], c, generator=g)
    return {n: from_coords(coords, feats, tuple(mask.shape[1:]), mask.shape[0], n) for n in backend_names}  # type: ignore[arg-type]


def assert_same(a: SparseMap, b: SparseMap, tol: float = TOL) -> None:
    ca, fa = values(a)
    cb, fb = values(b)
    assert torch.equal(ca, cb), "active site sets differ"
    assert fa.shape == fb.shape
    err = (fa - fb).abs().max().item() if fa.numel() else 0.0
    assert err <= tol, f"max abs error {err}"


def rand_w(co: int, k: int, ci: int, seed: int = 2) -> Tensor:
    return torch.randn(co, k, k, ci, generator=torch.Generator().manual_seed(seed)) / (k * (ci**0.5))


@pytest.mark.parametrize(("k", "dil"), [(3, 1), (1, 1), (3, 2), (5, 1)])
def test_subm_matches_dense(k: int, dil: int) -> None:
    maps = make(irregular_mask(), 6)
    w, b = rand_w(5, k, 6), torch.randn(5)
    out = {n: get_backend(n).subm_conv(x, w, b, dil) for n, x in maps.items()}
    assert_same(out["torch"], out["dense"])


def test_down_up_match_dense() -> None:
    mask = irregular_mask()
    maps = make(mask, 6)
    wd, bd = rand_w(7, 3, 6), torch.randn(7)
    wu, bu = rand_w(4, 3, 7, seed=3), torch.randn(4)
    res = {}
    for n, x in maps.items():
        bk = get_backend(n)
        d = bk.down_conv(x, wd, bd, "k0")
        u = bk.up_conv(d, wu, bu, "k0")
        res[n] = (d, u)
        assert d.spatial_shape == (19, 27)  # ceil(37/2), ceil(53/2)
        assert u.spatial_shape == (37, 53)
    assert_same(res["torch"][0], res["dense"][0])
    assert_same(res["torch"][1], res["dense"][1])
    # the inverse conv restores exactly the fine sites
    assert torch.equal(values(res["torch"][1])[0], torch.nonzero(mask))
    # strided active set = maxpool(3, 2, 1) of the mask
    pooled = F.max_pool2d(mask[:, None].float(), 3, 2, 1)[:, 0] > 0
    assert torch.equal(values(res["torch"][0])[0], torch.nonzero(pooled))


def test_two_level_down_up_even_odd_sizes() -> None:
    for h, w in [(16, 16), (17, 9), (2, 3)]:
        mask = torch.rand(2, h, w, generator=torch.Generator().manual_seed(h)) < 0.4
        mask[0, 0, 0] = True
        maps = make(mask, 3)
        res = {}
        for n, x in maps.items():
            bk = get_backend(n)
            d1 = bk.down_conv(x, rand_w(4, 3, 3), None, "a")
            d2 = bk.down_conv(d1, rand_w(5, 3, 4, 4), None, "b")
            u2 = bk.up_conv(d2, rand_w(4, 3, 5, 5), None, "b")
            u1 = bk.up_conv(u2, rand_w(2, 3, 4, 6), None, "a")
            res[n] = u1
        assert_same(res["torch"], res["dense"])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_dense(training: bool) -> None:
    maps = make(irregular_mask(), 6)
    outs = {}
    bns = {}
    for n, x in maps.items():
        torch.manual_seed(0)
        bn = SparseBatchNorm(6)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
        bn.train(training)
        outs[n] = bn(x)
        bns[n] = bn
    assert_same(outs["torch"], outs["dense"])
    assert torch.allclose(bns["torch"].running_mean, bns["dense"].running_mean, atol=1e-5)
    assert torch.allclose(bns["torch"].running_var, bns["dense"].running_var, atol=1e-5)
    if training:  # statistics over active sites only: zero mean at the active sites
        _, f = values(outs["dense"])
        assert f.mean(0).sub(bns["dense"].bias).abs().max() < 1e-4


def test_cat_scale_map_add_match_dense() -> None:
    maps = make(irregular_mask(), 4)
    others = make(irregular_mask(), 3, seed=7)
    s = torch.rand(2, 7)
    res = {}
    for n, x in maps.items():
        bk = get_backend(n)
        y = bk.cat(x, others[n])
        y = bk.scale(y, s)
        y = bk.map(y, torch.sigmoid)  # sigmoid(0) = 0.5 must not leak into inactive dense sites
        y = bk.add(y, y)
        res[n] = y
    assert_same(res["torch"], res["dense"])
    assert res["dense"].features.sum() == pytest.approx(values(res["dense"])[1].sum().item(), rel=1e-5)


def test_full_grid_subm_equals_conv2d() -> None:
    mask = torch.ones(2, 11, 13, dtype=torch.bool)
    maps = make(mask, 5)
    w, b = rand_w(6, 3, 5), torch.randn(6)
    x = maps["dense"].features
    ref = F.conv2d(x, w.permute(0, 3, 1, 2), b, padding=1)
    for n in ("torch", "dense"):
        y = get_backend(n).subm_conv(maps[n], w, b, 1)
        _, f = values(y)
        assert (f - ref.permute(0, 2, 3, 1).reshape(-1, 6)).abs().max() < 1e-5


def test_torch_backend_detects_errors() -> None:
    """The comparison can fail: a wrong weight layout is caught."""
    maps = make(irregular_mask(), 6)
    w = rand_w(6, 3, 6)
    a = get_backend("torch").subm_conv(maps["torch"], w, None)
    b = get_backend("dense").subm_conv(maps["dense"], w.transpose(1, 2).contiguous(), None)
    with pytest.raises(AssertionError):
        assert_same(a, b)


def test_up_conv_needs_registered_key() -> None:
    maps = make(irregular_mask(), 3)
    for bk_name, x in maps.items():
        with pytest.raises(ValueError):
            get_backend(bk_name).up_conv(x, rand_w(2, 3, 3), None, "missing")


def test_gradients_match_dense() -> None:
    mask = irregular_mask(2, 13, 17)
    coords = torch.nonzero(mask)
    feats0 = torch.randn(coords.shape[0], 3, generator=torch.Generator().manual_seed(3))
    grads = {}
    for n in ("torch", "dense"):
        feats = feats0.clone().requires_grad_(True)
        w1 = rand_w(4, 3, 3).requires_grad_(True)
        w2 = rand_w(4, 3, 4, 9).requires_grad_(True)
        w3 = rand_w(2, 3, 4, 10).requires_grad_(True)
        bn = SparseBatchNorm(4).train()
        bk = get_backend(n)
        x = from_coords(coords, feats, (13, 17), 2, n)
        y = bk.map(bk.subm_conv(x, w1, None, 2), torch.tanh)
        y = bk.batch_norm(bk.down_conv(y, w2, None, "g"), bn)
        y = bk.up_conv(y, w3, None, "g")
        _, f = values(y)
        (f**2).sum().backward()
        grads[n] = [t.grad for t in (feats, w1, w2, w3, bn.weight)]
    for gt, gd in zip(grads["torch"], grads["dense"], strict=True):
        assert gt is not None and gd is not None
        assert (gt - gd).abs().max() < 1e-4 * max(1.0, gd.abs().max().item())


def test_chunked_gather_matches_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    import sparsemat.sparse.rulebook as rb

    maps = make(irregular_mask(), 6)
    w, b = rand_w(5, 3, 6), torch.randn(5)
    full = get_backend("torch").subm_conv(maps["torch"], w, b)
    monkeypatch.setattr(rb, "GATHER_BYTES", 1000)  # a handful of rows per chunk
    maps = make(irregular_mask(), 6)
    with torch.no_grad():
        small = get_backend("torch").subm_conv(maps["torch"], w, b)
    assert (full.features - small.features).abs().max() < 1e-6


def test_unknown_backend() -> None:
    with pytest.raises(DeviceError):
        get_backend("nope")
    assert get_backend("auto", "cpu").name == "torch"


def test_spconv_refuses_cpu() -> None:
    pytest.importorskip("spconv")
    with pytest.raises(DeviceError):
        make(irregular_mask(), 3, backend_names=("spconv",))


# ---- CUDA + spconv -------------------------------------------------------------------------
def _cuda_spconv() -> None:
    pytest.importorskip("spconv")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


@pytest.mark.cuda
def test_spconv_matches_torch_ops() -> None:
    _cuda_spconv()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    mask = irregular_mask()
    coords = torch.nonzero(mask).cuda()
    feats = torch.randn(coords.shape[0], 6, device="cuda")
    res = {}
    for n in ("torch", "spconv"):
        bk = get_backend(n, "cuda")
        x = from_coords(coords, feats, (37, 53), 2, n)
        a = bk.subm_conv(x, rand_w(8, 3, 6).cuda(), torch.randn(8, generator=torch.Generator().manual_seed(0)).cuda())
        a2 = bk.subm_conv(a, rand_w(8, 3, 8, 5).cuda(), None, 2)
        d = bk.down_conv(a2, rand_w(8, 3, 8, 6).cuda(), None, "k")
        bn = nn.BatchNorm1d(8).cuda().eval()
        d = bk.batch_norm(d, bn)
        u = bk.up_conv(d, rand_w(4, 3, 8, 7).cuda(), None, "k")
        res[n] = (a, a2, d, u)
    for t, s in zip(res["torch"], res["spconv"], strict=True):
        assert_same(t, s)


def test_gather_workspace_survives_switching_inference_mode() -> None:
    """The reused gather buffer must work under inference_mode, then under no_grad, then again."""
    from sparsemat.sparse import rulebook as rb

    fpad = torch.randn(50, 4)
    table = torch.randint(0, 50, (30, 9))
    wmat = torch.randn(36, 5)
    ref = fpad[table].reshape(30, 36) @ wmat
    with torch.inference_mode():
        a = rb.gather_matmul(fpad, table, wmat)
    with torch.no_grad():
        b = rb.gather_matmul(fpad, table, wmat)
    with torch.inference_mode():
        c = rb.gather_matmul(fpad, table, wmat)
    for out in (a, b, c):
        torch.testing.assert_close(out, ref)
