"""``sparsemat doctor``: the report a TD reads on a workstation or farm blade, and its exit status."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sparsemat.cli.main import main
from sparsemat.settings import DEFAULT_MODEL

NAMES = ["engine", "torch", "GPUs", "device", "sparse backend", "refiner", "prior without a matte",
         "OpenImageIO / OpenColorIO", "colour conversion", "threads", "memory", "active-pixel budget"]


def _doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    status = main(["doctor", "--json", *argv])
    return status, json.loads(capsys.readouterr().out)


def test_a_working_setup_reports_what_a_render_would_use(capsys: pytest.CaptureFixture[str]) -> None:
    status, rep = _doctor(capsys, "--device", "cpu", "--prior-model", "input", "--max-active-pixels", "1234567",
                          "--threads", "1")
    checks = {c["name"]: c for c in rep["checks"]}
    assert status == 0 and rep["problems"] == 0 and [c["name"] for c in rep["checks"]] == NAMES
    assert checks["refiner"]["value"].startswith(f"{DEFAULT_MODEL}: 0.70 M parameters from ")
    assert checks["refiner"]["value"].endswith(f"shm_{DEFAULT_MODEL}.pt")
    assert checks["device"]["value"] == "cpu (knob: cpu)"
    assert checks["colour conversion"]["value"] == "linear 0.18 -> sRGB 0.4614"
    assert checks["threads"]["value"] == f"1 of {os.cpu_count()} cores (--threads)"
    assert checks["active-pixel budget"]["value"].startswith("1,234,567 pixels per pass (knob; 15 % of a UHD")


def test_problems_are_named_with_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "shm_typo.pt"
    status, rep = _doctor(capsys, "--device", "cpu", "--model", str(missing), "--threads", "-1")
    bad = {c["name"]: c["note"] for c in rep["checks"] if not c["ok"]}
    assert status == 1 and rep["problems"] == 2
    assert bad == {"refiner": f"SHM checkpoint '{missing}' does not exist.",
                   "threads": "Knob 'threads' cannot be -1: give the number of CPU threads, or 0 for every core."}
    import sparsemat.builders as builders

    monkeypatch.setattr(builders, "WEIGHTS_DIR", tmp_path)  # a checkout whose weights folder is empty
    capsys.readouterr()
    assert main(["doctor", "--device", "cpu", "--prior-model", "input"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM refiner" in out and f"no weights for '{DEFAULT_MODEL}'" in out and "run untrained" in out
    assert out.rstrip().endswith("1 problem(s)")


def test_the_plate_colour_space_is_checked_when_given(capsys: pytest.CaptureFixture[str]) -> None:
    status, rep = _doctor(capsys, "--device", "cpu", "--prior-model", "input", "--input-colorspace", "ACES - ACEScg")
    checks = {c["name"]: c for c in rep["checks"]}
    assert status == 0 and checks["plate colour space"]["value"] == "ACES - ACEScg = ACEScg"
    status, rep = _doctor(capsys, "--device", "cpu", "--prior-model", "input", "--input-colorspace", "show_linear")
    bad = {c["name"]: c["note"] for c in rep["checks"] if not c["ok"]}
    assert status == 1 and list(bad) == ["plate colour space"]
    assert "no such colour space" in bad["plate colour space"] and "ARRI LogC3 (EI800)" in bad["plate colour space"]
    assert bad["plate colour space"].endswith("Plate colour space knob) to one of these names.")


def test_the_output_folder_is_checked_when_given(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import sparsemat.cli.doctor as doctor

    target = tmp_path / "shot" / "mattes" / "m.####.exr"
    status, rep = _doctor(capsys, "--device", "cpu", "--prior-model", "input", "-o", str(target))
    checks = {c["name"]: c for c in rep["checks"]}
    assert status == 0 and checks["output folder"]["value"].startswith(f"{target.parent} (will be created), ")
    assert not target.parent.exists()  # a check creates nothing
    monkeypatch.setattr(doctor, "MIN_FREE_BYTES", 1 << 62)  # a disk that is (nearly) full
    status, rep = _doctor(capsys, "--device", "cpu", "--prior-model", "input", "-o", str(tmp_path))
    bad = {c["name"]: c["note"] for c in rep["checks"] if not c["ok"]}
    assert status == 1 and bad["output folder"].startswith("less than ") and "write elsewhere" in bad["output folder"]


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    """``sparsemat doctor --json | head -1``: no BrokenPipeError traceback on the terminal."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "sparsemat", "doctor", "--json", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(1) == b"{"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 1) and "Traceback" not in err and "BrokenPipe" not in err, err
