"""Function-preserving widening of a trained SHM (sparsemat.train.widen); the widened fine-tune is in test_train.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sparsemat.builders import SHM_CONFIGS
from sparsemat.engine.frames import FrameInput
from sparsemat.engine.session import Session
from sparsemat.errors import ModelError
from sparsemat.models.shm import SHM
from sparsemat.settings import Settings
from sparsemat.train.trainer import load_init_weights
from sparsemat.train.widen import calibrate_new_channels, input_channel_index, new_channel_counts, widths_of_state


def _trained_looking(cfg_name: str, seed: int) -> SHM:
    """An SHM whose every parameter and batch-norm statistic is random (no zero-initialised branch or head)."""
    torch.manual_seed(seed)
    m = SHM(SHM_CONFIGS[cfg_name])
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif name.endswith(("weight", "bias", "running_mean")) and t.is_floating_point():
                t.normal_(0.0, 0.05 if name.endswith("weight") and t.dim() > 1 else 0.5)
    return m.eval()


def _matte(model: SHM, rgb: np.ndarray, matte: np.ndarray) -> np.ndarray:
    settings = Settings(prior="input", temporal=False, device="cpu", soft_edge_guard=0.0)
    return Session(settings, refiner=model).process(0, FrameInput(rgb=rgb, matte=matte)).alpha


def _plate() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    rgb = rng.random((120, 160, 3)).astype(np.float32)
    yy, xx = np.mgrid[:30, :40]
    return rgb, np.clip(1.5 - np.hypot(xx - 20, yy - 15) / 6, 0, 1).astype(np.float32)


def test_widened_shm_computes_the_narrow_ones_matte() -> None:
    narrow = _trained_looking("lite_cs", 1)
    torch.manual_seed(2)
    wide = SHM(SHM_CONFIGS["lite_csw"]).eval()
    widened = load_init_weights(wide, narrow.state_dict())
    assert "up2.0.weight" in widened and "se.gate.weight" in widened and "layer4.1.bn2.running_var" in widened
    rgb, matte = _plate()
    ref, out = _matte(narrow, rgb, matte), _matte(wide, rgb, matte)
    refined = (ref > 0.01) & (ref < 0.99)
    assert refined.sum() > 500
    assert np.abs(ref - out).max() < 2e-5
    sd = wide.state_dict()
    # the skip connection's part sits after the wide decoder channels; old outputs read nothing new
    idx = input_channel_index("up2.0.weight", narrow.cfg, wide.cfg, 64 + 16)
    assert idx.tolist() == list(range(64)) + list(range(96, 112))
    assert sd["up2.0.weight"].shape == (72, 3, 3, 96 + 24)
    assert torch.equal(sd["up2.0.weight"][:48][..., idx], narrow.state_dict()["up2.0.weight"])
    assert float(sd["up2.0.weight"][:48, :, :, 64:96].abs().sum()) == 0.0
    assert float(sd["up2.0.weight"][:48, :, :, 112:].abs().sum()) == 0.0
    assert float(sd["up2.0.weight"][48:].abs().sum()) > 0  # new channels start random, not dead
    assert widths_of_state(narrow.state_dict(), wide.cfg).layers == narrow.cfg.layers


def test_widening_refuses_a_narrower_model() -> None:
    narrow = SHM(SHM_CONFIGS["lite_cs"])
    with pytest.raises(ModelError, match="'big.pt' \\(--init\\) does not fit.*does not fit into"):
        load_init_weights(narrow, SHM(SHM_CONFIGS["lite_csw"]).state_dict(), "Checkpoint 'big.pt' (--init)")


def test_calibration_measures_the_new_channels_only() -> None:
    narrow = _trained_looking("lite_cs", 4)
    wide = SHM(SHM_CONFIGS["lite_csw"])
    load_init_weights(wide, narrow.state_dict())
    counts = new_channel_counts(narrow.state_dict(), wide)
    assert counts["stem.0.1"] == 16 and counts["layer4.1.bn2"] == 96 and len(counts) > 20
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    rgb, matte = _plate()
    session = Session(Settings(prior="input", temporal=False, device="cpu"), refiner=wide)  # sets eval mode

    def passes() -> object:
        for _ in range(2):
            yield session.process(0, FrameInput(rgb=rgb, matte=matte))  # in the modes calibration sets

    with torch.no_grad():
        assert calibrate_new_channels(wide, counts, passes()) == 2
    after = wide.state_dict()
    assert not wide.training and all(not m.training for m in wide.modules())  # modes restored
    for name, n in counts.items():
        for stat in ("running_mean", "running_var"):
            k = f"{name}.{stat}"
            assert torch.equal(after[k][:n], before[k][:n]), k  # old channels keep their statistics
        assert not torch.equal(after[f"{name}.running_mean"][n:], before[f"{name}.running_mean"][n:]), name
        assert wide.get_submodule(name).momentum == 0.1
    for k, v in before.items():
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(after[k], v), k  # no parameter moves
