"""Frame patterns, ranges and discovery (sparsemat.io.sequence)."""

from __future__ import annotations

import os

import pytest
from sparsemat.errors import MissingFrameError, SettingsError
from sparsemat.io import Sequence, discover_frames, frame_path, has_frame_token, missing_frames, parse_frame_range


@pytest.mark.parametrize(
    ("pattern", "frame", "expected"),
    [
        ("plate.%04d.exr", 1001, "plate.1001.exr"),
        ("plate.%04d.exr", 7, "plate.0007.exr"),
        ("plate.####.exr", 7, "plate.0007.exr"),
        ("plate.######.exr", 7, "plate.000007.exr"),
        ("plate.#.exr", 7, "plate.7.exr"),
        ("plate.%d.exr", 7, "plate.7.exr"),
        ("plate.####.exr", 12345, "plate.12345.exr"),
        ("/shots/010/plate_%03d.tif", 5, "/shots/010/plate_005.tif"),
        ("single.exr", 1001, "single.exr"),
    ],
)
def test_frame_path(pattern: str, frame: int, expected: str) -> None:
    assert frame_path(pattern, frame) == expected


def test_token_detection_and_bad_patterns() -> None:
    assert has_frame_token("a.####.exr") and has_frame_token("a.%04d.exr") and has_frame_token("a.%d.exr")
    assert not has_frame_token("a.exr")
    with pytest.raises(SettingsError, match="one frame token"):
        frame_path("a.####.%04d.exr", 1)
    with pytest.raises(SettingsError, match="folder"):
        frame_path("/s/%04d/a.exr", 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("1-10x2", [1, 3, 5, 7, 9]),
        ("1,5,9-12", [1, 5, 9, 10, 11, 12]),
        ("12, 3 ,3", [3, 12]),
        ("-2-1", [-2, -1, 0, 1]),
        ("1001", [1001]),
    ],
)
def test_parse_frame_range(text: str, expected: list[int]) -> None:
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "10-1", "1-10x0", "1--", "1;2"])
def test_parse_frame_range_rejects(text: str) -> None:
    with pytest.raises(SettingsError, match="frames"):
        parse_frame_range(text)


@pytest.mark.parametrize("pattern", ["plate.%04d.exr", "plate.####.exr"])
def test_discover_and_missing(tmp_path, pattern: str) -> None:
    for f in (1001, 1002, 1004, 12345):
        (tmp_path / f"plate.{f:04d}.exr").write_bytes(b"x")
    # not frames of this pattern: wrong padding, temp file of an in-progress write, other names
    for name in ("plate.1.exr", ".plate.1003.tmp-99.exr", "plate.1003.exr.bak", "other.1003.exr"):
        (tmp_path / name).write_bytes(b"x")
    full = os.path.join(tmp_path, pattern)
    assert discover_frames(full) == [1001, 1002, 1004, 12345]
    assert missing_frames(full, "1001-1005") == [1003, 1005]
    seq = Sequence(full)
    assert seq.frames() == [1001, 1002, 1004, 12345]
    with pytest.raises(MissingFrameError, match=r"1003.*plate\.1003\.exr"):
        seq.require("1001-1004")
    assert seq.require([1001, 1002]) == [1001, 1002]


def test_discover_unpadded_and_single(tmp_path) -> None:
    for f in (1, 2, 10):
        (tmp_path / f"p.{f}.png").write_bytes(b"x")
    assert discover_frames(str(tmp_path / "p.%d.png")) == [1, 2, 10]
    assert discover_frames(str(tmp_path / "p.#.png")) == [1, 2, 10]
    assert discover_frames(str(tmp_path / "missing_dir" / "p.####.png")) == []
    single = tmp_path / "p.1.png"
    assert Sequence(str(single)).is_single_file
    assert missing_frames(str(single), [1, 2]) == []
    assert missing_frames(str(tmp_path / "nope.exr"), [1]) == [1]
