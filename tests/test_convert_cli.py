"""``sparsemat convert-official`` through the CLI, and a converted SHM in the engine with the LPN's context."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sparsemat.builders import build_shm
from sparsemat.cli.main import main as cli_main
from sparsemat.engine import FrameInput, Session
from sparsemat.priors.lpn_prior import LpnPrior
from sparsemat.settings import Settings
from test_convert import _official_lpn, _official_shm


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("official")
    lpn_sd, shm_sd = _official_lpn(), _official_shm()
    whole = {f"module.lpn.{k}": v for k, v in lpn_sd.items()} | {f"module.shm.{k}": v for k, v in shm_sd.items()}
    torch.save({"state_dict": whole}, tmp_path / "SparseMat.pth")
    torch.save({f"module.{k}": v for k, v in lpn_sd.items()}, tmp_path / "lpn.pth")
    return tmp_path


@pytest.fixture(scope="module")
def converted(official: Path) -> Path:
    out = official / "conv"
    assert cli_main(["convert-official", str(official / "lpn.pth"), str(official / "SparseMat.pth"), "-o", str(out)]) == 0
    return out


def test_convert_cli_writes_loadable_files(official: Path, converted: Path) -> None:
    out = converted
    assert {p.name for p in out.iterdir()} == {"lpn.pt", "shm_official.pt"}
    shm = build_shm(out / "shm_official.pt")
    assert shm.uses_prior_context is True  # from the checkpoint's lpn_ctx flag
    assert build_shm("lite").uses_prior_context is False
    LpnPrior(weights=out / "lpn.pt")  # loads strictly
    # an LPN-only conversion
    assert cli_main(["convert-official", str(official / "lpn.pth"), "-o", str(out / "c")]) == 0
    assert (out / "c" / "lpn.pt").is_file() and not (out / "c" / "shm_official.pt").exists()


def test_convert_cli_errors(official: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["convert-official", str(official / "missing.pth"), "-o", str(official / "x")]) == 1
    assert "missing.pth" in capsys.readouterr().err
    torch.save({"foo": torch.zeros(1)}, official / "junk.pth")
    assert cli_main(["convert-official", str(official / "junk.pth"), "-o", str(official / "y")]) == 1


def test_converted_shm_receives_lpn_context_in_engine(converted: Path) -> None:
    out = converted
    shm = build_shm(out / "shm_official.pt")
    prior = LpnPrior(weights=out / "lpn.pt")
    seen: list[torch.Tensor | None] = []
    forward = shm.forward

    def spy(x, lr_rgb, lr_prior, ctx=None):  # type: ignore[no-untyped-def]
        seen.append(ctx)
        return forward(x, lr_rgb, lr_prior, ctx)

    shm.forward = spy  # type: ignore[method-assign]
    settings = Settings(prior="lpn", temporal=False, device="cpu", backend="torch", prior_size=128)
    session = Session(settings, refiner=shm, prior=prior)
    rng = np.random.default_rng(0)
    rgb = rng.random((64, 96, 3), dtype=np.float32)
    res = session.process(0, FrameInput(rgb=rgb))
    assert res.alpha.shape == (64, 96)
    assert res.active.any()  # the random LPN's prior is soft: the SHM runs
    assert seen and seen[0] is not None
    assert seen[0] is prior.last_ctx and seen[0].shape[1] == 32
    # a project-trained SHM (no flag) never gets the LPN context
    lite = build_shm("lite")
    assert Session(Settings(prior="lpn", device="cpu"), refiner=lite, prior=prior)._ctx() is None
