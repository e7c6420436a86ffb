"""``sparsemat demo`` at a tiny size: files, printed report, contact sheet and exit status."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import OpenImageIO as oiio
import pytest
import torch
from sparsemat.builders import shipped_weight_path
from sparsemat.cli.demo import parse_size
from sparsemat.cli.main import main
from sparsemat.errors import SettingsError
from sparsemat.io import read_plate


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny frames: one torch thread is faster, above all on a loaded machine (no OpenMP spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_demo_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    status = main(["-q", "demo", "--out", str(out), "--frames", "2", "--size", "128x96", "--seed", "3"])
    stdout, stderr = capsys.readouterr()
    assert status == 0, stderr
    for sub, name in (("plates", "plate"), ("prior", "prior"), ("gt", "alpha"), ("mattes", "matte")):
        assert sorted(os.listdir(out / sub)) == [f"{name}.0001.exr", f"{name}.0002.exr"], sub
    plate = read_plate(str(out / "plates/plate.0001.exr"))
    assert plate.pixel_type == "half" and plate.rgb.shape == (96, 128, 3)
    spec = oiio.ImageInput.open(str(out / "mattes/matte.0002.exr")).spec()
    assert {"R", "G", "B", "A", "sparsity.active"} <= set(spec.channelnames)
    sheet = out / "contact_sheet.png"
    assert sheet.is_file() and sheet.stat().st_size > 1000
    assert "unknown-region MAD" in stdout and "Grad" in stdout and "prior alone" in stdout
    assert "area-downsampled" in stdout  # says how the stand-in prior was made
    assert "contact sheet: " + str(sheet) in stdout
    if not shipped_weight_path("lite").is_file():
        assert "UNTRAINED" in stdout


def test_demo_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_size("4k") == (2160, 3840) and parse_size("320x200") == (200, 320)
    with pytest.raises(SettingsError):
        parse_size("big")
    assert main(["demo", "--size", "10x10"]) == 2
    assert "size" in capsys.readouterr().err
