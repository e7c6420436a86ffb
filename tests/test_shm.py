"""SHM: one set of weights, identical results on the torch and masked-dense backends."""

from __future__ import annotations

import pytest
import torch
from sparsemat import Settings
from sparsemat.builders import SHM_CONFIGS, build_shm, count_parameters
from sparsemat.models import SHM, SHMOutput
from sparsemat.sparse import from_coords, get_backend, to_dense, values
from sparsemat.sparse.layers import SparseBatchNorm, SubMConv2d
from test_sparse_ops import _cuda_spconv, irregular_mask
from torch import Tensor


def randomize(model: SHM, seed: int = 0) -> SHM:
    """Random weights everywhere (the shipped init zeroes residual γ and shrinks output convs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, SparseBatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_((torch.rand(m.running_mean.shape, generator=g) - 0.5) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, SubMConv2d) and m.out_channels == 1:
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / (m.in_channels**0.5))
    return model


def inputs(mask: Tensor, seed: int = 0, channels: int = 4) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    b, h, w = mask.shape
    coords = torch.nonzero(mask)
    feats = torch.rand(coords.shape[0], channels, generator=g) * 2 - 1
    lr_rgb = torch.rand(b, 3, (h + 3) // 4, (w + 3) // 4, generator=g)
    lr_prior = torch.rand(b, 1, (h + 3) // 4, (w + 3) // 4, generator=g)
    return coords, feats, lr_rgb, lr_prior


def run(model: SHM, backend: str, mask: Tensor, seed: int = 0) -> SHMOutput:
    coords, feats, lr_rgb, lr_prior = inputs(mask, seed, model.cfg.in_channels)
    x = from_coords(coords, feats, (mask.shape[1], mask.shape[2]), mask.shape[0], backend)
    return model(x, lr_rgb, lr_prior)


@pytest.mark.parametrize("name", ["lite", "lite_cs", "paper"])
@pytest.mark.parametrize("training", [False, True])
def test_shm_torch_matches_dense(name: str, training: bool) -> None:
    model = randomize(SHM(SHM_CONFIGS[name])).train(training)
    mask = irregular_mask()
    outs = {}
    for backend in ("torch", "dense"):
        torch.manual_seed(0)
        m = model  # BN running stats update in training; compare outputs of the same state
        state = {k: v.clone() for k, v in m.state_dict().items()}
        with torch.no_grad():
            outs[backend] = run(m, backend, mask)
        m.load_state_dict(state)
    t, d = outs["torch"], outs["dense"]
    for a, b in zip((t.alpha, *t.side), (d.alpha, *d.side), strict=True):
        ca, fa = values(a)
        cb, fb = values(b)
        assert torch.equal(ca, cb)
        assert fa.shape[1] == 1
        assert (fa - fb).abs().max().item() < 1e-4
        assert fa.std() > 1e-3  # the comparison is not trivially between constants
    # alpha on exactly the input sites; side outputs at strides 4, 2, 1
    assert torch.equal(values(t.alpha)[0], torch.nonzero(mask))
    assert [s.spatial_shape for s in t.side] == [(10, 14), (19, 27), (37, 53)]
    # dense outputs: inactive sites are 0, not 0.5
    dense_alpha = to_dense(d.alpha)
    assert torch.all(dense_alpha[:, 0][~mask] == 0)
    assert float(dense_alpha.min()) >= 0 and float(dense_alpha.max()) <= 1


def test_shm_gradients_match_dense() -> None:
    model = randomize(SHM(SHM_CONFIGS["lite"])).train()
    mask = irregular_mask(2, 19, 23, seed=3)
    grads = {}
    for backend in ("torch", "dense"):
        model.zero_grad()
        state = {k: v.clone() for k, v in model.state_dict().items()}
        out = run(model, backend, mask)
        loss = values(out.alpha)[1].sum() + sum(values(s)[1].sum() for s in out.side)
        loss.backward()
        model.load_state_dict(state)
        grads[backend] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads["torch"].keys() == grads["dense"].keys()
    assert len(grads["torch"]) == len(list(model.parameters()))
    for n, gt in grads["torch"].items():
        gd = grads["dense"][n]
        assert (gt - gd).abs().max() <= 1e-4 * max(1.0, gd.abs().max().item()), n


def test_external_ctx_bypasses_encoder() -> None:
    model = randomize(SHM(SHM_CONFIGS["lite"])).eval()  # random head: the output depends on the context
    mask = irregular_mask()
    coords, feats, lr_rgb, lr_prior = inputs(mask)
    x = from_coords(coords, feats, (37, 53), 2, "torch")
    ctx = torch.randn(2, 32, 3, 4)
    with torch.no_grad():
        a = model(x, lr_rgb, lr_prior, ctx=ctx).alpha.features
        other = model(x, lr_rgb, lr_prior, ctx=10 * torch.randn(2, 32, 3, 4)).alpha.features
        model.context.proj.weight.add_(1.0)  # must not matter with an external ctx
        b = model(x, lr_rgb, lr_prior, ctx=ctx).alpha.features
    assert (a - other).abs().max() > 1e-6  # the given context is used (through the Masked-SE gates) ...
    assert torch.equal(a, b)  # ... and the encoder is not


def test_parameter_counts() -> None:
    paper = count_parameters(SHM(SHM_CONFIGS["paper"]))
    lite = count_parameters(SHM(SHM_CONFIGS["lite"]))
    assert 13e6 <= paper <= 17e6
    assert lite < 1.5e6
    assert lite * 4 < 20e6  # fp32 weight file well under 20 MB


@pytest.mark.parametrize("name", ["lite", "lite_cs", "lite_cs2", "lite_cs3", "lite_cs4", "lite_csw"])
def test_shipped_weights_load_as_registered(name: str) -> None:
    """Every trained variant ships its file, which fills the registered network (not a random init), and the weights
    folder stays within the 20 MB the project allows."""
    from sparsemat.builders import WEIGHTS_DIR, shipped_weight_path
    from sparsemat.settings import DEFAULT_MODEL

    path = shipped_weight_path(name)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["config"] == name
    model = build_shm(name)
    assert model.cfg == SHM_CONFIGS[name] and model.cfg.in_channels == (4 if name == "lite" else 12)
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt["state_dict"][k].to(v.dtype)), k  # lite_csw ships float16 weights
    assert float(model.head[-1].weight.detach().abs().sum()) > 0  # trained: the residual head is not the zero init
    assert sum(f.stat().st_size for f in WEIGHTS_DIR.glob("*.pt")) < 20e6
    assert shipped_weight_path(DEFAULT_MODEL).is_file() and Settings().model == DEFAULT_MODEL == "lite_cs4"
    if name in ("lite_cs2", "lite_cs3", "lite_cs4"):  # the same network as lite_cs, trained again: other weights
        before = {"lite_cs2": "lite_cs", "lite_cs3": "lite_cs2", "lite_cs4": "lite_cs3"}[name]
        other = torch.load(shipped_weight_path(before), map_location="cpu", weights_only=True)["state_dict"]
        assert not torch.equal(other["head.4.weight"], ckpt["state_dict"]["head.4.weight"])


def test_build_shm_and_checkpoint(tmp_path: pytest.TempPathFactory) -> None:
    model = build_shm("lite")
    assert not model.training
    path = tmp_path / "ckpt.pt"  # type: ignore[operator]
    randomize(model, 5)
    torch.save({"config": "lite", "state_dict": model.state_dict()}, path)
    loaded = build_shm(str(path))
    for (k, v), v2 in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(v, v2), k
    from sparsemat.errors import ModelError

    with pytest.raises(ModelError):
        build_shm("nonexistent-variant")


def test_macs_positive_and_scale_with_sites() -> None:
    model = SHM(SHM_CONFIGS["lite"])
    small = irregular_mask(1, 64, 64)
    big = torch.ones(1, 64, 64, dtype=torch.bool)
    xs = [from_coords(torch.nonzero(m), torch.zeros(int(m.sum()), 4), (64, 64), 1, "torch") for m in (small, big)]
    ms = [model.macs(x, (16, 16)) for x in xs]
    assert 0 < ms[0] < ms[1]
    # full grid: the stem's first conv alone is H*W*9*4*C
    assert ms[1] > 64 * 64 * 9 * 4 * SHM_CONFIGS["lite"].stem
    assert model.site_counts(xs[1]) == (4096, 1024, 256, 64)


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["lite", "lite_cs", "paper"])
def test_shm_spconv_matches_torch(name: str) -> None:
    _cuda_spconv()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = randomize(SHM(SHM_CONFIGS[name])).cuda().eval()
    mask = irregular_mask()
    coords, feats, lr_rgb, lr_prior = (t.cuda() for t in inputs(mask, channels=model.cfg.in_channels))
    outs = {}
    for backend in ("torch", "spconv"):
        assert get_backend(backend, "cuda").name == backend
        x = from_coords(coords, feats, (37, 53), 2, backend)
        with torch.no_grad():
            outs[backend] = model(x, lr_rgb, lr_prior)
    for a, b in zip(
        (outs["torch"].alpha, *outs["torch"].side), (outs["spconv"].alpha, *outs["spconv"].side), strict=True
    ):
        ca, fa = values(a)
        cb, fb = values(b)
        assert torch.equal(ca, cb)
        assert (fa - fb).abs().max().item() < 1e-4


def test_site_counts_after_forward_read_the_pass_registry() -> None:
    """After a forward pass the strided site sets come from the pass's registry, with the same counts."""
    from sparsemat.builders import SHM_CONFIGS
    from sparsemat.models.shm import SHM
    from sparsemat.sparse import get_backend

    torch.manual_seed(1)
    model = SHM(SHM_CONFIGS["lite"]).eval()
    mask = torch.rand(61, 83) > 0.8
    coords = torch.nonzero(mask)
    coords = torch.cat([torch.zeros(len(coords), 1, dtype=torch.long), coords], 1)
    x = get_backend("torch", "cpu").from_coords(coords, torch.rand(len(coords), 4) * 2 - 1, (61, 83), 1)
    fresh = model.site_counts(x)
    with torch.inference_mode():
        model(x, torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))
    assert "spconv2" in x.registry
    assert model.site_counts(x) == fresh
    assert fresh[0] == int(mask.sum())
