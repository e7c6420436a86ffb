"""``sparsemat render`` through the command line: messages AND exit status on tiny EXR sequences.

Every render runs in-process through :func:`sparsemat.cli.main.main` (the same parser and code
path as the ``sparsemat`` command) except the kill test, which needs a real process to SIGKILL.
Plates are 64×48 half EXRs with an external ``--prior`` matte, ``--prior-size 128`` and a seeded
``lite`` checkpoint (``--model PATH``), so no prior network runs and two renders use identical
weights whether or not shipped weights exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
from sparsemat.cli.main import main
from sparsemat.io import read_metadata, write_frame

H, W = 48, 64
FRAMES = range(1, 9)


@dataclass(frozen=True)
class Fixture:
    """Paths of the session-wide test sequence."""

    root: Path
    plate: str  # pattern, frames 1-8
    matte: str  # pattern, frames 1-8
    model: str  # seeded lite checkpoint


def _plate(frame: int, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """``([h, w, 3] float16 scene-linear RGB, [h, w] float32 alpha)``: a soft edge sliding right."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip((xx - 0.35 * w - frame + 3 * np.sin(yy / 5)) / 6.0, 0.0, 1.0)
    rng = np.random.default_rng(frame)
    bg = 0.05 + 0.3 * rng.random((h, w, 3), dtype=np.float32)
    fg = np.array([0.8, 0.5, 0.3], np.float32)
    rgb = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return rgb.astype(np.float16), alpha


def _write_plate(path: str, rgb: np.ndarray, window: object = None) -> None:
    write_frame(path, {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2]}, window=window)  # type: ignore[arg-type]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny frames: one torch thread is faster, above all on a loaded machine (no OpenMP spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def seq(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    """Frames 1-8 of a plate, its matte and a seeded checkpoint, built once per session."""
    root = tmp_path_factory.mktemp("cli_render")
    for f in FRAMES:
        rgb, alpha = _plate(f)
        _write_plate(str(root / f"plate.{f:04d}.exr"), rgb)
        write_frame(str(root / f"matte.{f:04d}.exr"), {"A": alpha})
    from sparsemat.builders import SHM_CONFIGS
    from sparsemat.models.shm import SHM

    torch.manual_seed(0)
    model = root / "shm_test.pt"
    torch.save({"config": "lite", "state_dict": SHM(SHM_CONFIGS["lite"]).state_dict()}, model)
    return Fixture(root, str(root / "plate.####.exr"), str(root / "matte.####.exr"), str(model))


def _copy_seq(seq: Fixture, dest: Path, frames: range | list[int] = FRAMES) -> tuple[str, str]:
    """Copy some frames of the fixture into ``dest``; return (plate pattern, matte pattern)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in frames:
        for kind in ("plate", "matte"):
            shutil.copy(seq.root / f"{kind}.{f:04d}.exr", dest / f"{kind}.{f:04d}.exr")
    return str(dest / "plate.####.exr"), str(dest / "matte.####.exr")


def _render(capsys: pytest.CaptureFixture[str], seq: Fixture, *argv: str, plate: str | None = None,
            matte: str | None = None, output: str, extra_top: tuple[str, ...] = ("-q",)) -> tuple[int, str, str]:
    """Run ``sparsemat render`` in-process; return (exit status, stdout, stderr)."""
    capsys.readouterr()
    args = [*extra_top, "render", plate or seq.plate, "-o", output, "--prior-size", "128", "--model", seq.model,
            "--progress", "json"]
    if matte != "":
        args += ["--prior", matte or seq.matte]
    status = main([*args, *argv])
    out, err = capsys.readouterr()
    return status, out, err


def _records(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _pixels(path: str | Path) -> tuple[oiio.ImageSpec, np.ndarray]:
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    try:
        spec = inp.spec().copy()
        return spec, np.asarray(inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT))
    finally:
        inp.close()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --- bad inputs ------------------------------------------------------------------------------


def test_missing_frames_are_named(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plate, matte = _copy_seq(seq, tmp_path / "in", [1, 2, 4])
    status, out, err = _render(capsys, seq, "--frames", "1-4", plate=plate, matte=matte,
                               output=str(tmp_path / "out/o.####.exr"))
    assert status == 1
    assert "frame 3" in err.lower() and "plate.0003.exr" in err
    assert "1 of 4 frame(s) failed" in err
    assert [r["status"] for r in _records(out)] == ["done", "done", "failed", "done"]
    assert sorted(os.listdir(tmp_path / "out")) == ["o.0001.exr", "o.0002.exr", "o.0004.exr"]


def test_gap_in_discovered_sequence_is_named(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --frames, a hole in the frames on disk is a failure, not silently skipped."""
    plate, matte = _copy_seq(seq, tmp_path / "in", [1, 3])
    status, out, err = _render(capsys, seq, plate=plate, matte=matte, output=str(tmp_path / "out/o.####.exr"))
    assert status == 1
    assert "plate.0002.exr" in err and "frame 2" in err.lower()
    assert [r["frame"] for r in _records(out)] == [1, 2, 3]


def test_truncated_file_named_with_frame(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plate, matte = _copy_seq(seq, tmp_path / "in", [1, 2])
    _truncate(tmp_path / "in/plate.0002.exr")
    status, out, err = _render(capsys, seq, plate=plate, matte=matte, output=str(tmp_path / "out/o.####.exr"))
    assert status == 1
    assert "plate.0002.exr (frame 2)" in err and "truncated" in err
    assert [r["status"] for r in _records(out)] == ["done", "failed"]
    assert not (tmp_path / "out/o.0002.exr").exists()


def test_no_rgb_channels_lists_channels(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "depth.exr"
    spec = oiio.ImageSpec(W, H, 2, oiio.HALF)
    spec.channelnames = ("Z", "mask.A")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(np.zeros((H, W, 2), np.float16))
    out.close()
    status, _, err = _render(capsys, seq, plate=str(path), matte=str(seq.root / "matte.0001.exr"),
                             output=str(tmp_path / "o.exr"))
    assert status == 1
    assert "no R, G, B" in err and "Channels found: Z, mask.A" in err and "depth.exr" in err
    assert not (tmp_path / "o.exr").exists()


def test_resolution_change_resets_history(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plate, matte = _copy_seq(seq, tmp_path / "in", [1, 2])
    rgb, alpha = _plate(3, 60, 80)
    _write_plate(str(tmp_path / "in/plate.0003.exr"), rgb)
    write_frame(str(tmp_path / "in/matte.0003.exr"), {"A": alpha})
    status, out, err = _render(capsys, seq, "--temporal", plate=plate, matte=matte,
                               output=str(tmp_path / "out/o.####.exr"))
    assert status == 0, err
    assert "warning: frame 3:" in err and "frame history was reset" in err and "80x60" in err
    assert [r["status"] for r in _records(out)] == ["done"] * 3
    spec, _ = _pixels(tmp_path / "out/o.0003.exr")
    assert (spec.width, spec.height) == (80, 60)
    # without Temporal reuse (the default) every frame is computed on its own anyway: nothing to warn about
    # (a CG element whose bounding box moves changes size every frame)
    status, _, err = _render(capsys, seq, plate=plate, matte=matte, output=str(tmp_path / "out2/o.####.exr"))
    assert status == 0 and "history" not in err, err


def test_missing_prior_matte_named(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plate, matte = _copy_seq(seq, tmp_path / "in", [1, 2, 3])
    os.remove(tmp_path / "in/matte.0002.exr")
    status, out, err = _render(capsys, seq, plate=plate, matte=matte, output=str(tmp_path / "out/o.####.exr"))
    assert status == 1
    assert "Frame 2: the prior matte does not exist" in err and "matte.0002.exr" in err
    assert [r["status"] for r in _records(out)] == ["done", "failed", "done"]


def test_unwritable_output_folder(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Root ignores permission bits, so the folder's parent is a regular file."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    folder = blocker / "renders"
    status, out, err = _render(capsys, seq, "--frames", "1-3", output=str(folder / "o.####.exr"))
    assert status in (1, 2)
    assert str(folder) in err
    assert "frame" not in out  # it failed before rendering anything


def test_an_output_that_is_an_input_is_refused_before_anything_is_written(
        seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plate, matte = _copy_seq(seq, tmp_path / "shot", [1, 2])
    before = {p.name: p.read_bytes() for p in (tmp_path / "shot").iterdir()}
    (tmp_path / "link").symlink_to(tmp_path / "shot")
    for output, what in ((plate.replace("####", "%04d"), "plate"),  # the same files, spelled differently
                         (str(tmp_path / "link" / "plate.####.exr"), "plate"),  # reached through a link
                         (matte, "prior matte")):
        status, _, err = _render(capsys, seq, plate=plate, matte=matte, output=output)
        assert status == 2
        assert f"it is the {what} itself (frame 1): the render would overwrite it" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "shot").iterdir()} == before


def test_a_folder_or_a_wrong_matte_channel_is_named_as_such(seq: Fixture, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "shots").mkdir()
    status, _, err = _render(capsys, seq, plate=str(tmp_path / "shots"), output=str(tmp_path / "o.exr"))
    assert status == 1 and f"{tmp_path / 'shots'} is a folder, not an image: give a file, or a sequence" in err
    status, _, err = _render(capsys, seq, "--prior-channel", "roto.alpha", "--frames", "1",
                             output=str(tmp_path / "o.####.exr"))
    assert status == 1
    assert "frame 1: The prior matte (--prior): " in err and "has no channel 'roto.alpha'. Channels found: A." in err


def test_cuda_without_gpu(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _render(capsys, seq, "--frames", "1", "--device", "cuda", output=str(tmp_path / "o.####.exr"))
    if torch.cuda.is_available():
        assert status == 0, err
    else:
        assert status == 2
        assert "Device 'cuda'" in err and "no usable CUDA GPU" in err
        assert not (tmp_path / "o.0001.exr").exists()


def test_stop_on_error(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plate, matte = _copy_seq(seq, tmp_path / "in", [1, 2, 3, 4])
    _truncate(tmp_path / "in/plate.0002.exr")
    status, out, err = _render(capsys, seq, "--stop-on-error", plate=plate, matte=matte,
                               output=str(tmp_path / "out/o.####.exr"))
    assert status == 1
    assert [(r["frame"], r["status"]) for r in _records(out)] == [(1, "done"), (2, "failed")]
    assert sorted(os.listdir(tmp_path / "out")) == ["o.0001.exr"]
    assert "frame 2" in err


def test_every_failed_frame_named_at_end(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plate, matte = _copy_seq(seq, tmp_path / "in", [1, 2, 3, 4])
    _truncate(tmp_path / "in/plate.0002.exr")
    os.remove(tmp_path / "in/matte.0004.exr")
    status, out, err = _render(capsys, seq, plate=plate, matte=matte, output=str(tmp_path / "out/o.####.exr"))
    assert status == 1
    summary = err[err.index("2 of 4 frame(s) failed"):]
    assert "frame 2: " in summary and "plate.0002.exr" in summary
    assert "frame 4: " in summary and "matte.0004.exr" in summary
    assert "frame 1:" not in summary and "frame 3:" not in summary
    assert sorted(os.listdir(tmp_path / "out")) == ["o.0001.exr", "o.0003.exr"]


def test_single_image_to_pattern_is_usage_error(seq: Fixture, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _render(capsys, seq, plate=str(seq.root / "plate.0001.exr"),
                             matte=str(seq.root / "matte.0001.exr"), output=str(tmp_path / "o.####.exr"))
    assert status == 2 and "output" in err


# --- atomic writes and resume ------------------------------------------------------------------

_KILLER = textwrap.dedent("""
    import os, signal, sys
    import sparsemat.io.writer as w
    real = w._fsync
    def fsync_then_die(path):
        real(path)
        if ".o.0003.tmp-" in path:  # temp file of frame 3 complete on disk, not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)
    w._fsync = fsync_then_die
    from sparsemat.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def test_killed_render_leaves_no_final_file_and_resume_redoes_it(seq: Fixture, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL while frame 3 is being written: no o.0003.exr; --resume skips 1-2 and renders 3-4."""
    out_dir = tmp_path / "out"
    argv = ["-q", "render", seq.plate, "-o", str(out_dir / "o.####.exr"), "--prior", seq.matte, "--frames", "1-4",
            "--prior-size", "128", "--model", seq.model, "--progress", "json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _KILLER, *argv], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == -9, proc.stderr  # killed by SIGKILL mid-frame
    names = sorted(os.listdir(out_dir))
    assert "o.0003.exr" not in names and "o.0004.exr" not in names
    assert "o.0001.exr" in names and "o.0002.exr" in names
    temps = [n for n in names if ".tmp-" in n]
    assert temps and all(n.startswith(".o.0003.tmp-") for n in temps)  # the interrupted write

    status, out, err = _render(capsys, seq, "--frames", "1-4", "--resume", output=str(out_dir / "o.####.exr"))
    assert status == 0, err
    assert [(r["frame"], r["status"]) for r in _records(out)] == [(1, "skipped"), (2, "skipped"), (3, "done"),
                                                                  (4, "done")]
    assert (out_dir / "o.0003.exr").is_file()
    assert not [n for n in os.listdir(out_dir) if ".tmp-" in n]  # the killed render's temp file is swept


_TERMINATOR = _KILLER.replace("signal.SIGKILL", "signal.SIGTERM")


def test_a_terminated_render_finishes_the_frame_in_flight_and_leaves_no_temp_file(seq: Fixture, tmp_path: Path) -> None:
    """SIGTERM (a farm cancelling or pre-empting the task, Nuke's Cancel) while frame 3 is being written: the
    render stops like Ctrl-C, frame 3 is completed, nothing half-written is left, exit status 143."""
    out_dir = tmp_path / "out"
    argv = ["-q", "render", seq.plate, "-o", str(out_dir / "o.####.exr"), "--prior", seq.matte, "--frames", "1-6",
            "--prior-size", "128", "--model", seq.model, "--progress", "json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _TERMINATOR, *argv], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 143, proc.stderr
    assert "sparsemat render: terminated (SIGTERM); frames already written are complete." in proc.stderr
    names = sorted(os.listdir(out_dir))
    assert {"o.0001.exr", "o.0002.exr", "o.0003.exr"} <= set(names) and "o.0006.exr" not in names
    assert not [n for n in names if ".tmp-" in n]
    from sparsemat.io import is_complete

    assert all(is_complete(str(out_dir / n)) for n in names)


def test_stale_temp_files_of_this_host_only_are_swept(tmp_path: Path) -> None:
    from sparsemat.io import remove_stale_temps, temp_path

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = Path(temp_path(str(tmp_path / "o.0001.exr")))
    killed = tmp_path / mine.name.replace(f"-{os.getpid()}.", f"-{int(dead.stdout)}.")
    other_host = tmp_path / ".o.0002.tmp-anotherhost-123.exr"
    for p in (mine, killed, other_host):
        p.write_bytes(b"partial")
    assert remove_stale_temps(str(tmp_path)) == [str(killed)]
    assert mine.exists() and other_host.exists() and not killed.exists()


def test_resume_skips_complete_and_rerenders_deleted(seq: Fixture, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    output = str(tmp_path / "o.####.exr")
    status, _, err = _render(capsys, seq, "--frames", "1-3", output=output)
    assert status == 0, err
    first = (tmp_path / "o.0001.exr").stat().st_mtime_ns
    os.remove(tmp_path / "o.0002.exr")
    status, out, err = _render(capsys, seq, "--frames", "1-3", "--resume", output=output)
    assert status == 0, err
    assert [(r["frame"], r["status"]) for r in _records(out)] == [(1, "skipped"), (2, "done"), (3, "skipped")]
    assert (tmp_path / "o.0002.exr").is_file()
    assert (tmp_path / "o.0001.exr").stat().st_mtime_ns == first


def test_resume_renders_again_the_frames_made_with_other_settings(seq: Fixture, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A farm job resubmitted after a knob change, with --resume: frames from the old settings must not stay in
    the sequence next to new ones."""
    output = str(tmp_path / "o.####.exr")
    assert _render(capsys, seq, "--frames", "1-2", output=output)[0] == 0
    old = (tmp_path / "o.0001.exr").read_bytes()
    status, out, err = _render(capsys, seq, "--frames", "1-3", "--resume", "--kernel-size", "9", output=output)
    assert status == 0, err
    assert [(r["frame"], r["status"]) for r in _records(out)] == [(1, "done"), (2, "done"), (3, "done")]
    assert "o.0001.exr was made with other settings or inputs; --resume renders such frames again" in err
    assert (tmp_path / "o.0001.exr").read_bytes() != old
    assert json.loads(str(read_metadata(str(tmp_path / "o.0001.exr"))["settings"]))["kernel_size"] == 9
    status, out, _ = _render(capsys, seq, "--frames", "1-3", "--resume", "--kernel-size", "9", output=output)
    assert [r["status"] for r in _records(out)] == ["skipped"] * 3  # now they are this render's frames
    status, out, _ = _render(capsys, seq, "--frames", "1", "--resume", "--kernel-size", "9", "--output-mode", "alpha",
                             output=output)
    assert [r["status"] for r in _records(out)] == ["done"]  # another output mode is another file


# --- what is written ---------------------------------------------------------------------------


def test_data_window_preserved(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sparsemat.io import Window

    rgb, alpha = _plate(1, H + 8, W + 16)  # 8/16 px overscan around a 64×48 display window, offset data
    window = Window(x=-8, y=-4, width=W + 16, height=H + 8, full_x=0, full_y=0, full_width=W, full_height=H)
    _write_plate(str(tmp_path / "over.exr"), rgb, window)
    write_frame(str(tmp_path / "over_matte.exr"), {"A": alpha}, window=window)
    status, _, err = _render(capsys, seq, plate=str(tmp_path / "over.exr"), matte=str(tmp_path / "over_matte.exr"),
                             output=str(tmp_path / "o.exr"))
    assert status == 0, err
    spec, _ = _pixels(tmp_path / "o.exr")
    assert (spec.x, spec.y, spec.width, spec.height) == (-8, -4, W + 16, H + 8)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, W, H)


def test_anamorphic_plate_keeps_its_pixel_aspect_and_says_so(seq: Fixture, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from sparsemat.io import Window

    rgb, alpha = _plate(1)
    _write_plate(str(tmp_path / "ana.exr"), rgb, Window(0, 0, W, H, 0, 0, W, H, pixel_aspect=2.0))
    write_frame(str(tmp_path / "ana_matte.exr"), {"A": alpha})
    status, _, err = _render(capsys, seq, plate=str(tmp_path / "ana.exr"), matte=str(tmp_path / "ana_matte.exr"),
                             output=str(tmp_path / "o.exr"), extra_top=())
    assert status == 0, err
    # 64 x 48 pixels at 2.0 are a 128 x 48 picture: short side 48 -> 128, long side 128 * 128 / 48 -> 352
    assert "pixel aspect 2 (the plate's header): the prior sees the plate desqueezed, at 352x128" in err
    assert re.search(r"sparsemat render: 1 frame\(s\) written, 0 skipped, 0 failed in [0-9.]+ s \([0-9.]+ s a frame\) "
                     r"-> .*o\.exr\n$", err)  # the last line of a farm task's log
    spec, _ = _pixels(tmp_path / "o.exr")
    assert spec.get_float_attribute("PixelAspectRatio") == 2.0  # reads back into the plate's format

    # --pixel-aspect overrides a header that lacks it (a square-pixel file of an anamorphic scan)
    status, _, err = _render(capsys, seq, "--pixel-aspect", "1.5", "--frames", "1",
                             output=str(tmp_path / "p.####.exr"), extra_top=())
    assert status == 0, err
    assert "pixel aspect 1.5 (--pixel-aspect)" in err
    spec, _ = _pixels(tmp_path / "p.0001.exr")
    assert spec.get_float_attribute("PixelAspectRatio") == 1.5

    with pytest.raises(SystemExit) as usage:
        _render(capsys, seq, "--pixel-aspect", "0", output=str(tmp_path / "q.exr"))
    assert usage.value.code == 2
    assert "outside 0.1-10 (e.g. 2 for a 2x anamorphic plate)" in capsys.readouterr().err


def test_output_keeps_the_plates_timecode_and_rate(seq: Fixture, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rgb, _ = _plate(1)
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (0x10000000, 0))  # 10:00:00:00
    spec.attribute("FramesPerSecond", oiio.TypeDesc("rational2i"), (25, 1))
    out = oiio.ImageOutput.create(str(tmp_path / "tc.exr"))
    assert out.open(str(tmp_path / "tc.exr"), spec)
    out.write_image(rgb.astype(np.float32))
    out.close()
    status, _, err = _render(capsys, seq, "--prior-model", "input", plate=str(tmp_path / "tc.exr"),
                             matte=str(seq.root / "matte.0001.exr"), output=str(tmp_path / "o.exr"))
    assert status == 0, err
    got, _ = _pixels(tmp_path / "o.exr")
    assert tuple(got.getattribute("smpte:TimeCode")) == (0x10000000, 0)
    assert tuple(got.getattribute("FramesPerSecond")) == (25, 1)


def test_a_plate_that_names_its_primaries_is_read_in_them_and_the_log_says_so(
        seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rgb, _ = _plate(1)
    spec = oiio.ImageSpec(W, H, 3, oiio.HALF)
    spec.attribute("openexr:chromaticities", oiio.TypeDesc("float[8]"),
                   (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767))
    out = oiio.ImageOutput.create(str(tmp_path / "ap1.exr"))
    assert out.open(str(tmp_path / "ap1.exr"), spec)
    out.write_image(rgb.astype(np.float32))
    out.close()
    status, _, err = _render(capsys, seq, plate=str(tmp_path / "ap1.exr"), matte=str(seq.root / "matte.0001.exr"),
                             output=str(tmp_path / "o.exr"), extra_top=())
    assert status == 0, err
    assert "plate colour space ACEScg (the header's chromaticities: AP1 primaries)" in err
    status, _, err = _render(capsys, seq, "--input-colorspace", "lin_rec709", plate=str(tmp_path / "ap1.exr"),
                             matte=str(seq.root / "matte.0001.exr"), output=str(tmp_path / "p.exr"), extra_top=())
    assert status == 0 and "plate colour space" not in err


def test_each_eye_of_a_stereo_plate_is_matted_on_request(seq: Fixture, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rgb, alpha = _plate(1)
    spec = oiio.ImageSpec(W, H, 6, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "right.R", "right.G", "right.B")  # Nuke's stereo layout, hero 'left'
    spec.attribute("multiView", oiio.TypeDesc("string[2]"), ("left", "right"))
    out = oiio.ImageOutput.create(str(tmp_path / "stereo.exr"))
    assert out.open(str(tmp_path / "stereo.exr"), spec)
    out.write_image(np.concatenate([rgb, rgb[:, ::-1]], axis=-1).astype(np.float32))  # the right eye mirrored
    out.close()
    write_frame(str(tmp_path / "m.exr"), {"A": alpha})  # one mono roto for both eyes
    common = dict(plate=str(tmp_path / "stereo.exr"), matte=str(tmp_path / "m.exr"), extra_top=())
    status, _, err = _render(capsys, seq, output=str(tmp_path / "left.exr"), **common)  # type: ignore[arg-type]
    assert status == 0 and "stereo plate (views left, right): view 'left' (the hero view; --eye right" in err, err
    status, _, err = _render(capsys, seq, "--eye", "right", output=str(tmp_path / "right.exr"),
                             **common)  # type: ignore[arg-type]
    assert status == 0 and "view 'right' (--eye)" in err, err
    _, left_px = _pixels(tmp_path / "left.exr")
    _, right_px = _pixels(tmp_path / "right.exr")
    np.testing.assert_array_equal(left_px[..., :3], rgb.astype(np.float32))
    np.testing.assert_array_equal(right_px[..., :3], rgb[:, ::-1].astype(np.float32))
    status, _, err = _render(capsys, seq, "--eye", "centre", output=str(tmp_path / "c.exr"),
                             **common)  # type: ignore[arg-type]
    assert status == 1 and "has no view 'centre'. Views found: left, right" in err


def test_a_log_dpx_read_as_srgb_is_warned_about_once(seq: Fixture, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rgb, alpha = _plate(1)
    spec = oiio.ImageSpec(W, H, 3, oiio.UINT16)
    spec.attribute("oiio:BitsPerSample", 10)
    spec.attribute("dpx:Transfer", "Printing density")  # a film scan
    for f in (1, 2):
        out = oiio.ImageOutput.create(str(tmp_path / f"scan.{f:04d}.dpx"))
        assert out.open(str(tmp_path / f"scan.{f:04d}.dpx"), spec)
        out.write_image(np.full((H, W, 3), 0.45, np.float32))
        out.close()
    status, _, err = _render(capsys, seq, "--frames", "1-2", plate=str(tmp_path / "scan.####.dpx"),
                             output=str(tmp_path / "o.####.exr"), extra_top=())
    assert status == 0, err
    assert err.count("says its pixels are log (DPX transfer: Printing density) but is read as sRGB") == 1
    assert "Pass --input-colorspace with its log space: ADX10" in err
    status, _, err = _render(capsys, seq, "--frames", "1", "--input-colorspace", "ADX10",
                             plate=str(tmp_path / "scan.####.dpx"), output=str(tmp_path / "p.####.exr"), extra_top=())
    assert status == 0 and "says its pixels are log" not in err


@pytest.mark.parametrize("compression", ["piz", "none"])
def test_the_exr_compression_can_be_chosen_among_lossless_ones(seq: Fixture, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 compression: str) -> None:
    status, _, err = _render(capsys, seq, "--frames", "1", "--compression", compression,
                             output=str(tmp_path / "o.####.exr"))
    assert status == 0, err
    spec, _ = _pixels(tmp_path / "o.0001.exr")
    assert spec.getattribute("compression") == compression
    with pytest.raises(SystemExit):  # lossy ones are not offered: the matte is data
        _render(capsys, seq, "--compression", "dwaa", output=str(tmp_path / "p.exr"))


def test_a_dry_run_says_what_would_happen_and_writes_nothing(seq: Fixture, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    output = str(tmp_path / "out" / "o.####.exr")
    assert _render(capsys, seq, "--frames", "2", output=output)[0] == 0
    before = sorted(os.listdir(tmp_path / "out"))
    status, out, _ = _render(capsys, seq, "--frames", "1-4", "--resume", "--dry-run", output=output)
    assert status == 0
    assert "frames: 4 asked, 3 to render (1, 3, 4), 1 already made by this render (--resume)" in out
    assert "plate: " in out and "64x48 half, channels R, G, B, colour space Linear Rec.709 (sRGB)" in out
    assert "prior: input (auto: a matte input is connected)" in out and "nothing was computed or written" in out
    assert sorted(os.listdir(tmp_path / "out")) == before
    status, _, err = _render(capsys, seq, "--dry-run", plate=str(tmp_path / "none.####.exr"), output=output)
    assert status == 1 and "No frames of" in err  # what a render would say


def test_metadata_in_header(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sparsemat.version import __version__

    status, _, err = _render(capsys, seq, "--frames", "2", "--kernel-size", "9", output=str(tmp_path / "o.####.exr"))
    assert status == 0, err
    meta = read_metadata(str(tmp_path / "o.0002.exr"))
    assert meta["version"] == __version__
    assert meta["model"] == seq.model and meta["frame"] == 2
    settings = json.loads(str(meta["settings"]))
    assert settings["kernel_size"] == 9 and settings["prior_size"] == 128
    assert 0.0 < float(meta["active_share"]) <= 1.0
    stages = json.loads(str(meta["stage_seconds"]))
    assert set(stages) >= {"prior", "maps", "shm", "blend"}
    assert str(meta["prior"]).startswith("input")


def test_output_modes(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    written: dict[str, tuple[oiio.ImageSpec, np.ndarray]] = {}
    for mode in ("alpha", "rgba", "premult"):
        status, _, err = _render(capsys, seq, "--frames", "1", "--output-mode", mode,
                                 output=str(tmp_path / mode / "o.####.exr"))
        assert status == 0, err
        written[mode] = _pixels(tmp_path / mode / "o.0001.exr")
    assert tuple(written["alpha"][0].channelnames) == ("A",)
    assert tuple(written["rgba"][0].channelnames) == ("R", "G", "B", "A")
    assert tuple(written["premult"][0].channelnames) == ("R", "G", "B", "A")
    assert all(spec.format == oiio.HALF for spec, _ in written.values())
    alpha = written["alpha"][1][..., 0]
    assert np.array_equal(written["rgba"][1][..., 3], alpha) and np.array_equal(written["premult"][1][..., 3], alpha)
    plate_rgb, _ = _plate(1)
    rgba_rgb = written["rgba"][1][..., :3].astype(np.float16)
    assert np.array_equal(rgba_rgb.view(np.uint16), plate_rgb.view(np.uint16))  # the plate's own bits
    expected = (plate_rgb.astype(np.float32) * alpha[..., None]).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(written["premult"][1][..., :3], expected)
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0


def test_overlay_adds_sparsity_channels(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = _render(capsys, seq, "--frames", "1", "--overlay", "--output-mode", "alpha",
                             output=str(tmp_path / "o.####.exr"))
    assert status == 0, err
    spec, px = _pixels(tmp_path / "o.0001.exr")
    names = list(spec.channelnames)
    assert names[0] == "A" and "sparsity.active" in names and "sparsity.spatial" in names
    active = px[..., names.index("sparsity.active")]
    assert set(np.unique(active)) <= {0.0, 1.0} and active.any() and not active.all()


def test_chunked_equals_sequential(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ("--keyframe-interval", "3", "--temporal")
    status, _, err = _render(capsys, seq, "--frames", "1-8", *common, output=str(tmp_path / "seq/o.####.exr"))
    assert status == 0, err
    for chunk in ("1-4", "5-8"):
        status, _, err = _render(capsys, seq, "--frames", chunk, *common, output=str(tmp_path / "chunk/o.####.exr"))
        assert status == 0, err
    reused = 0
    for f in FRAMES:
        _, a = _pixels(tmp_path / f"seq/o.{f:04d}.exr")
        _, b = _pixels(tmp_path / f"chunk/o.{f:04d}.exr")
        assert np.array_equal(a, b), f"frame {f} differs between the sequential and the chunked render"
        reused += int(read_metadata(str(tmp_path / f"seq/o.{f:04d}.exr"))["temporal_reused"])
    assert reused > 0  # the test exercises temporal reuse, not only keyframes


def test_progress_json_lines(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _render(capsys, seq, "--frames", "1-2", output=str(tmp_path / "o.####.exr"),
                               extra_top=())
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 2  # nothing but JSON on stdout; notes go to stderr
    for frame, record in zip((1, 2), map(json.loads, lines), strict=True):
        assert record["frame"] == frame and record["status"] == "done"
        assert record["path"] == str(tmp_path / f"o.{frame:04d}.exr")
        assert 0.0 < float(record["active_share"]) <= 1.0 and float(record["seconds"]) > 0
        assert record["cascade_scales"] == [1.0] and isinstance(record["warnings"], list)
    assert "prior = input" in err


@pytest.mark.parametrize("stop", [False, True])
def test_write_failure_named(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch, stop: bool) -> None:
    """A frame whose file cannot be written (disk full…) fails by name; --stop-on-error stops there."""
    import sparsemat.io
    from sparsemat.errors import OutputError

    real = sparsemat.io.write_frame

    def flaky(path: str, *a: object, **k: object) -> str:
        if path.endswith("o.0002.exr"):
            raise OutputError(f"Cannot write {path}: No space left on device.")
        return real(path, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(sparsemat.io, "write_frame", flaky)
    flags = ("--stop-on-error",) if stop else ()
    status, out, err = _render(capsys, seq, "--frames", "1-3", *flags, output=str(tmp_path / "o.####.exr"))
    assert status == 1
    assert "frame 2: Cannot write" in err and "No space left" in err
    expected = [(1, "done"), (2, "failed")] + ([] if stop else [(3, "done")])
    assert [(r["frame"], r["status"]) for r in _records(out)] == expected
    assert sorted(n for n in os.listdir(tmp_path)) == (["o.0001.exr"] if stop else ["o.0001.exr", "o.0003.exr"])


# --- mattes, stills and formats beyond a plain EXR sequence -------------------------------------


def test_roto_bbox_matte_lands_in_its_data_window(seq: Fixture, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A roto written with its bounding box as data window (as Nuke writes it) is not stretched over the plate."""
    from sparsemat.io import Window

    rgb, _ = _plate(1)
    _write_plate(str(tmp_path / "plate.exr"), rgb)
    box = Window(x=40, y=10, width=16, height=16, full_x=0, full_y=0, full_width=W, full_height=H)
    write_frame(str(tmp_path / "roto.exr"), {"A": np.ones((16, 16), np.float32)}, window=box)
    status, _, err = _render(capsys, seq, "--output-mode", "alpha",
                             plate=str(tmp_path / "plate.exr"), matte=str(tmp_path / "roto.exr"),
                             output=str(tmp_path / "o.exr"))
    assert status == 0, err
    alpha = _pixels(tmp_path / "o.exr")[1][..., 0]
    assert alpha[:, :20].max() == 0.0  # 20+ px left of the box, outside the refined band: nothing
    assert alpha[14:22, 44:52].min() > 0.9  # inside the box: the roto
    assert 0.05 < alpha.mean() < 0.12  # the box is 256 / 3072 = 8.3 % of the frame


def test_still_with_frame_range_is_held(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A single image with --frames renders every requested frame (negative numbers too), each the same."""
    still, roto = str(seq.root / "plate.0001.exr"), str(seq.root / "matte.0001.exr")
    status, out, err = _render(capsys, seq, "--frames", "-2-0", plate=still, matte=roto,
                               output=str(tmp_path / "o.####.exr"))
    assert status == 0, err
    assert [r["frame"] for r in _records(out)] == [-2, -1, 0]
    frames = [_pixels(tmp_path / name)[1] for name in ("o.-002.exr", "o.-001.exr", "o.0000.exr")]
    assert all(np.array_equal(frames[0], f) for f in frames[1:])
    status, _, err = _render(capsys, seq, "--frames", "1-3", plate=still, matte=roto, output=str(tmp_path / "one.exr"))
    assert status == 2 and "3 frames" in err and "numbered output pattern" in err
    assert not (tmp_path / "one.exr").exists()


def test_unknown_colorspace_is_one_usage_error(seq: Fixture, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _render(capsys, seq, "--input-colorspace", "Rec709", output=str(tmp_path / "o.####.exr"))
    assert status == 2 and err.count("Rec709") == 1 and "known names" in err
    assert out == "" and not list(tmp_path.iterdir())


def test_threads_flag_and_opencue_slot(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A farm slot sharing its machine gets its own share: --threads N, else OpenCue's $CUE_THREADS."""
    before = torch.get_num_threads(), oiio.get_int_attribute("threads")
    try:
        status, _, err = _render(capsys, seq, "--frames", "1", "--threads", "2", output=str(tmp_path / "a.####.exr"))
        assert status == 0, err
        assert (torch.get_num_threads(), oiio.get_int_attribute("threads")) == (2, 2)
        monkeypatch.setenv("CUE_THREADS", "3")
        status, _, err = _render(capsys, seq, "--frames", "1", output=str(tmp_path / "b.####.exr"))
        assert status == 0, err
        assert (torch.get_num_threads(), oiio.get_int_attribute("threads")) == (3, 3)
        monkeypatch.setenv("CUE_THREADS", "lots")
        status, out, err = _render(capsys, seq, "--frames", "1", output=str(tmp_path / "c.####.exr"))
        assert status == 2 and "$CUE_THREADS" in err and "--threads N" in err and out == ""
        status, _, err = _render(capsys, seq, "--threads", "-1", output=str(tmp_path / "d.####.exr"))
        assert status == 2 and "Knob 'threads' cannot be -1" in err
    finally:
        from sparsemat.io import set_threads

        torch.set_num_threads(before[0])
        set_threads(before[1])


def test_float_plate_rgb_kept_in_half_output(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 32-bit plate's RGB is written back as float (half would round it and turn 70000 into inf)."""
    rgb, alpha = _plate(1)
    rgb = rgb.astype(np.float32)
    rgb[0, 0] = (0.1234567, 70000.0, -3.5)
    write_frame(str(tmp_path / "plate.exr"), {c: rgb[..., i] for i, c in enumerate("RGB")}, half=False)
    status, _, err = _render(capsys, seq, plate=str(tmp_path / "plate.exr"), matte=str(seq.root / "matte.0001.exr"),
                             output=str(tmp_path / "o.exr"))
    assert status == 0, err
    spec, px = _pixels(tmp_path / "o.exr")
    formats = [str(f) for f in spec.channelformats]
    assert formats == ["float", "float", "float", "half"]
    assert np.array_equal(px[..., :3], rgb)  # every value, bit for bit
    assert np.array_equal(px[..., 3], px[..., 3].astype(np.float16).astype(np.float32))


def test_png_output_is_display_srgb_straight(seq: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PNG output: the linear plate encoded to sRGB and not divided by the matte (PNG alpha is straight)."""
    rgb = np.full((H, W, 3), 0.18, np.float16)
    _write_plate(str(tmp_path / "plate.exr"), rgb)
    write_frame(str(tmp_path / "matte.exr"), {"A": np.full((H, W), 0.25, np.float32)})
    status, _, err = _render(capsys, seq, "--refine-strength", "0",
                             plate=str(tmp_path / "plate.exr"), matte=str(tmp_path / "matte.exr"),
                             output=str(tmp_path / "o.png"))
    assert status == 0, err
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # the bytes as stored
    inp = oiio.ImageInput.open(str(tmp_path / "o.png"), config)
    codes = np.asarray(inp.read_image(0, 0, 0, 4, oiio.UINT8))
    inp.close()
    assert np.all(codes[..., :3] == 118)  # 0.18 linear is 0.4614 in sRGB
    assert np.all(codes[..., 3] == 64)  # 0.25
