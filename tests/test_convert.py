"""Official checkpoint conversion on synthetic official state dicts (official names, RSCK, 128-in quirk)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from sparsemat.builders import SHM_CONFIGS, build_shm
from sparsemat.convert import (
    convert_lpn_state_dict,
    convert_official,
    convert_shm_state_dict,
    official_shm_shapes,
    quirk_filter_to_krsc,
    rsck_to_krsc,
    shm_key,
)
from sparsemat.errors import ModelError
from sparsemat.models.lpn import LPN
from sparsemat.models.shm import SHM
from sparsemat.priors.lpn_prior import LpnPrior
from sparsemat.sparse import from_coords, to_dense
from sparsemat.sparse.layers import SubMConv2d


def _official_shm(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in official_shm_shapes().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.1
    return sd


def _official_lpn() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return LPN().state_dict()


def test_official_shapes_match_method_notes() -> None:
    shapes = official_shm_shapes()
    assert shapes["backbone.layer1.0.conv1.weight"] == (3, 3, 128, 64)  # the 128-in quirk
    assert shapes["backbone.layer1.0.downsample.0.weight"] == (3, 3, 128, 64)
    assert shapes["decoder.conv_up1.0.weight"] == (3, 3, 512, 256)
    n_params = sum(torch.Size(s).numel() for k, s in shapes.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert abs(n_params - 14.9e6) < 0.1e6  # method.md §4: total ≈14.9M (encoder incl. +73,728 quirk)
    assert sum(torch.Size(shapes[f"ctx.{n}.layers.0.{p}"]).numel() for n in ("conv_f", "conv_b", "conv_g") for p in ("weight", "bias")) == 35_392


def test_layout_permutation() -> None:
    w = torch.randn(3, 3, 5, 7)
    k = rsck_to_krsc(w)
    assert k.shape == (7, 3, 3, 5)
    assert k[6, 1, 2, 4] == w[1, 2, 4, 6]


def test_quirk_filter_uses_first_nine_slices() -> None:
    w = torch.randn(3, 3, 128, 64)
    k = quirk_filter_to_krsc(w)
    assert k.shape == (64, 3, 3, 64)
    flat = w.reshape(-1)[: 9 * 64 * 64].view(9, 64, 64)  # [offset, in, out] as spconv 1.2.1 indiceConv read it
    assert k[10, 2, 1, 5] == flat[2 * 3 + 1, 5, 10]


def test_shm_converts_and_loads_strictly() -> None:
    official = _official_shm()
    ours = convert_shm_state_dict(official)
    model = SHM(SHM_CONFIGS["paper"])
    model.load_state_dict(ours, strict=True)
    assert torch.equal(model.p4x.weight, rsck_to_krsc(official["decoder.conv_p8x.weight"]))
    assert torch.equal(model.se.gate.weight, official["ctx.conv_g.layers.0.weight"])  # dense convs unchanged
    assert torch.equal(model.state_dict()["layer3.0.bn1.running_var"], official["backbone.layer3.0.bn1.running_var"])
    assert shm_key("backbone.bn3.weight") == "stem.2.1.weight"


def _dense_conv_via_offsets(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Hand reference: x [1, Cin, H, W]; taps [9 offsets (ky, kx row-major), Cin, Cout]; zero padding 1."""
    _, _, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1))
    out = torch.zeros(1, taps.shape[2], h, w, dtype=torch.float64)
    for o in range(9):
        dy, dx = divmod(o, 3)
        patch = xp[:, :, dy : dy + h, dx : dx + w].double()
        out += torch.einsum("bchw,cd->bdhw", patch, taps[o].double())
    return out.float()


@pytest.mark.parametrize("key", ["backbone.layer1.0.conv1.weight", "backbone.layer2.1.conv1.weight"])
def test_converted_conv_matches_hand_reference(key: str) -> None:
    """One SubM conv (full grid) with the converted filter equals the hand-permuted official filter."""
    official = _official_shm()
    w_off = official[key]
    cin = 64 if "layer1" in key else w_off.shape[2]
    taps = w_off.reshape(-1)[: 9 * cin * w_off.shape[3]].view(9, cin, w_off.shape[3])
    conv = SubMConv2d(cin, w_off.shape[3], 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(convert_shm_state_dict(official)[shm_key(key)])
    x = torch.randn(1, cin, 6, 7)
    coords = torch.nonzero(torch.ones(1, 6, 7))
    feats = x[0].permute(1, 2, 0).reshape(-1, cin)
    with torch.no_grad():
        y = to_dense(conv(from_coords(coords, feats, (6, 7), 1, backend="torch")))
    assert torch.allclose(y, _dense_conv_via_offsets(x, taps), atol=1e-4)


def test_lpn_state_dict_and_errors() -> None:
    official = _official_lpn()
    ours = convert_lpn_state_dict({k: v for k, v in official.items() if not k.endswith("num_batches_tracked")})
    LPN().load_state_dict(ours, strict=True)
    bad = dict(official)
    bad["decoder.p0x.layers.0.weight"] = torch.zeros(1, 3, 1, 1)
    del bad["aux_head.s1.layers.0.bias"]
    with pytest.raises(ModelError, match=r"missing: aux_head\.s1.*wrong shape: decoder\.p0x"):
        convert_lpn_state_dict(bad)
    with pytest.raises(ModelError, match="unexpected"):
        convert_shm_state_dict({**_official_shm(), "decoder.extra.weight": torch.zeros(1)})


def test_convert_official_end_to_end(tmp_path: Path) -> None:
    lpn_sd, shm_sd = _official_lpn(), _official_shm()
    whole = {f"module.lpn.{k}": v for k, v in lpn_sd.items()} | {f"module.shm.{k}": v for k, v in shm_sd.items()}
    torch.save({"state_dict": whole}, tmp_path / "SparseMat.pth")
    torch.save({f"module.{k}": v * 0 for k, v in lpn_sd.items()}, tmp_path / "lpn.pth")
    written = convert_official(tmp_path / "lpn.pth", tmp_path / "SparseMat.pth", tmp_path / "out")
    assert set(written) == {"lpn", "shm"}
    shm = build_shm(written["shm"])  # builders' strict loader
    assert torch.equal(shm.state_dict()["up1.0.weight"], rsck_to_krsc(shm_sd["decoder.conv_up1.0.weight"]))
    assert torch.load(written["shm"], weights_only=True)["lpn_ctx"] is True
    prior = LpnPrior(weights=written["lpn"])  # the LPN of SparseMat.pth wins over lpn.pth
    assert torch.equal(prior.net.state_dict()["decoder.p0x.layers.0.weight"], lpn_sd["decoder.p0x.layers.0.weight"])
    only_lpn = convert_official(tmp_path / "lpn.pth", None, tmp_path / "out2")
    assert set(only_lpn) == {"lpn"}
    with pytest.raises(ModelError, match="not found"):
        convert_official(tmp_path / "nope.pth", None, tmp_path / "out3")


def test_official_train_py_checkpoint_format_converts(tmp_path: Path) -> None:
    """What the official train.py saves: the weights next to optimizer state and a numpy ``best_mad``.

    Written in the legacy pickle format with numpy 1.x's module name for the scalar, as a torch 1.9 /
    numpy 1.x training run wrote it; loading stays ``weights_only`` (no code from the file runs).
    """
    import io

    import numpy as np

    sd = {f"lpn.{k}": v for k, v in _official_lpn().items()} | {f"shm.{k}": v for k, v in _official_shm().items()}
    param = torch.nn.Parameter(torch.zeros(3))
    buf = io.BytesIO()
    torch.save({"state_dict": sd, "optimizer": torch.optim.Adam([param]).state_dict(), "epoch": 30,
                "iteration": 1000, "best_mad": min(np.array([0.01, 0.02]).mean(), 1e12)}, buf,
               _use_new_zipfile_serialization=False)
    data = buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\nscalar" in data
    (tmp_path / "SparseMat.pth").write_bytes(data)
    written = convert_official(None, tmp_path / "SparseMat.pth", tmp_path / "out")
    again = convert_official(None, tmp_path / "SparseMat.pth", tmp_path / "out2")
    a, b = (torch.load(p["shm"], weights_only=True)["state_dict"] for p in (written, again))
    assert all(torch.equal(a[k], b[k]) for k in a)  # context.* placeholders included: one file per input
