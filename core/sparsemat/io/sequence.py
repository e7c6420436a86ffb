"""Frame-sequence patterns, frame ranges and frame discovery.

A *pattern* names every frame of a sequence with one frame token in the file name:

- ``plate.%04d.exr`` (printf, zero-padded to 4 digits), ``plate.%d.exr`` (no padding);
- ``plate.####.exr`` (Nuke/Natron hashes: one ``#`` per digit, so ``#`` is unpadded and
  ``######`` pads to 6);
- ``plate.exr`` (no token): a single file, used for every frame.

Frames wider than the padding are written in full (``plate.####.exr`` frame 12345 →
``plate.12345.exr``); negative frames follow printf (``%04d`` of -5 is ``-005``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from sparsemat.errors import MissingFrameError, SettingsError

# One frame token: %d, %0Nd or a run of '#'.
_TOKEN = re.compile(r"%(0?\d*)d|#+")
_RANGE_ITEM = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:[x:]\s*(\d+)\s*)?)?$")


def _token(pattern: str) -> re.Match[str] | None:
    """The single frame token of ``pattern`` (in the file name), or None for a single file."""
    name = os.path.basename(pattern)
    matches = list(_TOKEN.finditer(name))
    if len(matches) > 1:
        raise SettingsError("pattern", pattern, "use one frame token (%04d or ####) in the file name")
    if _TOKEN.search(os.path.dirname(pattern)):
        raise SettingsError("pattern", pattern, "frame tokens are only allowed in the file name, not the folder")
    return matches[0] if matches else None


def has_frame_token(pattern: str) -> bool:
    """True when ``pattern`` names a sequence (``%04d``, ``%d`` or ``#`` run), False for one file."""
    return _token(pattern) is not None


def _padding(tok: re.Match[str]) -> int:
    text = tok.group(0)
    if text.startswith("#"):
        return len(text)
    digits = tok.group(1)
    return int(digits) if digits else 0


def frame_path(pattern: str, frame: int) -> str:
    """Return the file name of ``frame`` in ``pattern`` (``pattern`` itself when it has no token).

    >>> frame_path("plate.####.exr", 1001)
    'plate.1001.exr'
    >>> frame_path("/s/plate.%06d.exr", 7)
    '/s/plate.000007.exr'
    """
    tok = _token(pattern)
    if tok is None:
        return pattern
    head, name = os.path.split(pattern)
    pad = _padding(tok)
    number = f"{frame:0{pad}d}" if pad else str(frame)
    name = name[: tok.start()] + number + name[tok.end():]
    return os.path.join(head, name) if head else name


def discover_frames(pattern: str) -> list[int]:
    """Frames of ``pattern`` that exist on disk, sorted ascending.

    A file counts only if its name is exactly what :func:`frame_path` gives for its frame,
    so ``plate.1.exr`` is not frame 1 of ``plate.####.exr`` and hidden temp files of an
    in-progress write (``.plate.1001.tmp-123.exr``) are never picked up. A pattern without a
    token returns ``[]`` (no frame numbers); a missing folder also returns ``[]``.
    """
    tok = _token(pattern)
    if tok is None:
        return []
    folder, name = os.path.split(pattern)
    regex = re.compile(re.escape(name[: tok.start()]) + r"(-?\d+)" + re.escape(name[tok.end():]) + r"\Z")
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return []
    frames: list[int] = []
    for entry in entries:
        m = regex.match(entry)
        if m is None:
            continue
        frame = int(m.group(1))
        if os.path.basename(frame_path(pattern, frame)) == entry:
            frames.append(frame)
    return sorted(set(frames))


def parse_frame_range(text: str) -> list[int]:
    """Parse a frame range into a sorted list of unique frames.

    Accepts comma-separated items: ``"1001"``, ``"1001-1100"``, ``"1-10x2"`` (every 2nd frame,
    Nuke style; ``1-10:2`` also works) and mixes such as ``"1,5,9-12"``. Negative frames are
    allowed (``"-5--1"``). Raises :class:`~sparsemat.errors.SettingsError` (knob ``frames``) for
    anything else, e.g. a reversed range or a zero step.
    """
    frames: set[int] = set()
    items = [item for item in str(text).split(",") if item.strip()]
    if not items:
        raise SettingsError("frames", text, "give frames like 1001-1100, 1-10x2 or 1,5,9-12")
    for item in items:
        m = _RANGE_ITEM.match(item)
        if m is None:
            raise SettingsError("frames", text, f"'{item.strip()}' is not a frame, a range a-b or a stepped range a-bxN")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        step = int(m.group(3)) if m.group(3) is not None else 1
        if last < first:
            raise SettingsError("frames", text, f"range '{item.strip()}' ends before it starts")
        if step < 1:
            raise SettingsError("frames", text, f"step in '{item.strip()}' must be 1 or more")
        frames.update(range(first, last + 1, step))
    return sorted(frames)


def missing_frames(pattern: str, frames: list[int] | str) -> list[int]:
    """Frames of ``frames`` (a list or a range string) whose file of ``pattern`` does not exist."""
    wanted = parse_frame_range(frames) if isinstance(frames, str) else sorted(set(frames))
    if not has_frame_token(pattern):
        return [] if os.path.isfile(pattern) else wanted
    return [f for f in wanted if not os.path.isfile(frame_path(pattern, f))]


def format_frames(frames: list[int]) -> str:
    """Compact text for a list of frames, e.g. ``[1, 2, 3, 7]`` → ``"1-3,7"`` (for messages)."""
    parts: list[str] = []
    ordered = sorted(set(frames))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


@dataclass(frozen=True)
class Sequence:
    """A frame sequence on disk, e.g. ``Sequence("/shots/010/plate.####.exr")``.

    Attributes:
        pattern: Path with one frame token (``%04d``, ``%d``, ``####``) or a single file.
    """

    pattern: str

    def __post_init__(self) -> None:
        _token(self.pattern)  # validate early

    @property
    def is_single_file(self) -> bool:
        """True when the pattern has no frame token (one file for every frame)."""
        return not has_frame_token(self.pattern)

    def path(self, frame: int) -> str:
        """File name of ``frame`` (see :func:`frame_path`)."""
        return frame_path(self.pattern, frame)

    def frames(self) -> list[int]:
        """Frames present on disk, sorted (see :func:`discover_frames`)."""
        return discover_frames(self.pattern)

    def missing(self, frames: list[int] | str) -> list[int]:
        """Requested frames whose file is absent (see :func:`missing_frames`)."""
        return missing_frames(self.pattern, frames)

    def require(self, frames: list[int] | str) -> list[int]:
        """Return the requested frames sorted, or raise MissingFrameError naming every absent one."""
        wanted = parse_frame_range(frames) if isinstance(frames, str) else sorted(set(frames))
        absent = self.missing(wanted)
        if absent:
            raise MissingFrameError(
                f"{len(absent)} frame(s) of {self.pattern} are missing on disk: {format_frames(absent)} "
                f"(e.g. {self.path(absent[0])}). Render or copy them, or narrow the frame range."
            )
        return wanted
