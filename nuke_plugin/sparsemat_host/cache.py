"""Per-node cache folders, cache keys, frame patterns and frame ranges.

Layout under the cache root (``<script dir>/sparsemat_cache`` unless the node says otherwise)::

    <root>/<node>/inputs/<input id>/source.%04d.exr   plate written by the internal Write
    <root>/<node>/inputs/<input id>/matte.%04d.exr    optional rough matte (R=G=B=A=matte)
    <root>/<node>/<key>/sparsemat.%04d.exr            engine output (R,G,B,A + sparsity.active)
    <root>/<node>/<key>/key.json                      what the key stands for (for people)

The key hashes the engine settings, the model's identity, the input identity and the engine
version, so a knob change selects another folder and toggling back finds the old frames.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsemat.settings import Settings, knob

OUTPUT_NAME = "sparsemat.%04d.exr"
SOURCE_NAME = "source.%04d.exr"
MATTE_NAME = "matte.%04d.exr"
CACHE_LAYOUT_VERSION = 1

_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%(0?)(\d*)d")


def frame_path(pattern: str, frame: int) -> str:
    """Substitute ``frame`` into a ``%04d`` or ``####`` pattern."""
    if _PRINTF.search(pattern):
        return pattern % frame
    match = _HASHES.search(pattern)
    if match:
        width = len(match.group(0))
        sign = "-" if frame < 0 else ""
        return pattern[: match.start()] + sign + str(abs(frame)).zfill(width) + pattern[match.end():]
    return pattern


def existing_frames(pattern: str, frames: Iterable[int]) -> list[int]:
    """The frames of ``frames`` whose file exists, sorted."""
    return sorted(f for f in set(frames) if os.path.isfile(frame_path(pattern, f)))


def missing_frames(pattern: str, frames: Iterable[int]) -> list[int]:
    """The frames of ``frames`` whose file does not exist yet, sorted."""
    return sorted(f for f in set(frames) if not os.path.isfile(frame_path(pattern, f)))


def spans(frames: Iterable[int]) -> list[tuple[int, int]]:
    """Group frame numbers into inclusive contiguous runs: ``[1, 2, 3, 7] -> [(1, 3), (7, 7)]``."""
    out: list[tuple[int, int]] = []
    for f in sorted(set(frames)):
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def preroll_start(frame: int, keyframe_interval: int, first: int) -> int:
    """First frame the engine reads to render ``frame`` (its keyframe), clamped to ``first``.

    Mirrors the engine's pre-roll: keyframes are every ``keyframe_interval``-th frame number;
    0 means no keyframes, so pre-roll starts at the sequence's first frame.
    """
    if keyframe_interval <= 0:
        return first
    return max(first, frame // keyframe_interval * keyframe_interval)


_RANGE = re.compile(r"^(-?\d+)(?:-(-?\d+))?(?:[x:](\d+))?$")


def frames_to_render(pattern: str, first: int, last: int, frames: Iterable[int] | None = None
                     ) -> tuple[list[int], list[int]]:
    """``(wanted, missing)``: the frames asked for (``frames``, or ``first..last``) and those of them not yet
    rendered to ``pattern``."""
    wanted = sorted(set(frames)) if frames else list(range(first, last + 1))
    return wanted, missing_frames(pattern, wanted)


def input_spans(frames: Sequence[int], first: int, keyframe_interval: int, patterns: Sequence[str],
                preroll: bool = True) -> list[list[tuple[int, int]]]:
    """For each input-cache pattern, the frame spans to write so the engine can render ``frames`` (sorted):
    with ``preroll`` (:meth:`sparsemat.settings.Settings.reads_earlier_frames`) from the keyframe at or before
    ``frames[0]`` (not before ``first``), else from ``frames[0]``; frames on disk skipped."""
    start = preroll_start(frames[0], keyframe_interval, min(first, frames[0])) if preroll else frames[0]
    needed = range(start, frames[-1] + 1)
    return [spans(missing_frames(p, needed)) for p in patterns]


def parse_frame_ranges(text: str) -> list[int]:
    """Parse a host frame-range string: ``"1-10"``, ``"1-10x2"``, ``"5"``, ``"1,3,5-7"``, ``"1-5 9-12"``.

    Raises ValueError naming the part it cannot read.
    """
    frames: set[int] = set()
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"cannot read frame range {part!r} (use e.g. 1-100, 1-100x2 or 5)")
        a = int(match.group(1))
        b = int(match.group(2)) if match.group(2) is not None else a
        step = int(match.group(3) or 1)
        lo, hi = min(a, b), max(a, b)
        frames.update(range(lo, hi + 1, max(step, 1)))
    return sorted(frames)


def farm_frames_from_args(args: Sequence[str]) -> list[int] | None:
    """Frames requested on a Nuke command line (``-F A-B`` / ``--frames``; several allowed).

    Returns None when the command line names no range (the render then uses the script's).
    """
    frames: list[int] = []
    found = False
    for i, arg in enumerate(args):
        value: str | None = None
        if arg in ("-F", "--frames") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("-F") and len(arg) > 2 and arg[2:3].isdigit():
            value = arg[2:]
        if value is not None:
            found = True
            frames.extend(parse_frame_ranges(value))
    return sorted(set(frames)) if found else None


def model_identity(model: str) -> str:
    """Identity of a refiner model: its registry name, or a checkpoint path plus size and mtime."""
    path = Path(os.path.expanduser(model.removeprefix("file:")))
    if model not in knob("model").choices and path.is_file():
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    return model


def input_identity(parts: Iterable[str]) -> str:
    """Short stable hash of a description of the inputs (upstream node classes and knob values)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cache_key(settings: Settings, input_id: str, engine_version: str, output: dict[str, Any] | None = None) -> str:
    """Cache key of one node state: settings + model identity + input identity + engine version.

    ``output`` (output mode and overlay) joins the key for hosts whose cache holds the final output
    (Natron); Nuke caches RGBA + sparsity and applies them when reading back, so it leaves it out.
    """
    extra = {"output": output} if output is not None else {}
    blob = json.dumps(
        {
            **extra,
            "layout": CACHE_LAYOUT_VERSION,
            "settings": settings.to_dict(),
            "model": model_identity(settings.model),
            "prior": model_identity(settings.prior.removeprefix("onnx:")) if settings.prior.startswith("onnx:") else "",
            "inputs": input_id,
            "engine": engine_version,
        },
        sort_keys=True,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def cache_root(custom: str, project_file: str, env: dict[str, str] | None = None) -> Path:
    """Where a node's cache lives, for any host.

    Precedence: the node's cache-folder knob, then ``SPARSEMAT_CACHE``, then ``sparsemat_cache`` next to
    the saved script/project, then ``~/.sparsemat/cache/unsaved``.

    Args:
        custom: the node's cache-folder knob ("" when unset).
        project_file: path of the saved script or project file, or of its folder ("" when unsaved).
        env: environment to read (default ``os.environ``).
    """
    env = dict(os.environ) if env is None else env
    if custom.strip():
        return Path(os.path.expanduser(custom.strip()))
    if env.get("SPARSEMAT_CACHE"):
        return Path(env["SPARSEMAT_CACHE"])
    if project_file:
        return Path(project_file) / "sparsemat_cache"
    return Path.home() / ".sparsemat" / "cache" / "unsaved"


def safe_name(name: str) -> str:
    """A node's full name as a folder name (``Group1.SparseMat1`` stays readable)."""
    return _UNSAFE.sub("_", name).strip("._") or "SparseMat"


@dataclass(frozen=True)
class NodeCache:
    """The cache folders of one node.

    Attributes:
        root: Cache root folder.
        node_name: The node's full name (made safe for a folder name).
    """

    root: Path
    node_name: str

    @property
    def node_dir(self) -> Path:
        return Path(self.root) / safe_name(self.node_name)

    def inputs_dir(self, input_id: str) -> Path:
        return self.node_dir / "inputs" / input_id

    def source_pattern(self, input_id: str) -> str:
        return (self.inputs_dir(input_id) / SOURCE_NAME).as_posix()

    def matte_pattern(self, input_id: str) -> str:
        return (self.inputs_dir(input_id) / MATTE_NAME).as_posix()

    def key_dir(self, key: str) -> Path:
        return self.node_dir / key

    def output_pattern(self, key: str) -> str:
        return (self.key_dir(key) / OUTPUT_NAME).as_posix()

    def keys(self) -> list[str]:
        """Keys that have a folder (rendered or started), sorted."""
        if not self.node_dir.is_dir():
            return []
        return sorted(p.name for p in self.node_dir.iterdir() if p.is_dir() and p.name != "inputs")

    def write_manifest(self, key: str, settings: Settings, input_id: str, source: str, matte: str | None) -> Path:
        """Record what ``key`` stands for in ``<key>/key.json`` (for people and farm debugging)."""
        folder = self.key_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "key.json"
        data = {"key": key, "settings": settings.to_dict(), "inputs": input_id, "source": source, "matte": matte}
        tmp = folder / ".key.json.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def clear_key(self, key: str) -> int:
        """Delete the rendered frames of ``key``; returns how many files went."""
        folder = self.key_dir(key)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.iterdir() if p.is_file())
        shutil.rmtree(folder)
        return count

    def purge(self) -> int:
        """Delete this node's whole cache (every key and the input copies); returns files deleted."""
        if not self.node_dir.is_dir():
            return 0
        count = sum(1 for p in self.node_dir.rglob("*") if p.is_file())
        shutil.rmtree(self.node_dir)
        return count


def remove_partial_files(pattern: str) -> list[str]:
    """Delete files beside ``pattern`` that are not complete frames (engine temp files).

    The engine writes atomically (temp file, then rename), so after a cancelled or killed run any
    file in the output folder whose name is not a frame of ``pattern`` (and not ``key.json``)
    is a leftover. Returns the removed paths.
    """
    folder = Path(pattern).parent
    if not folder.is_dir():
        return []
    name = Path(pattern).name
    if _PRINTF.search(name):
        regex = re.compile(re.escape(_PRINTF.sub("\0", name)).replace("\0", r"-?\d+") + "$")
    else:
        regex = re.compile(re.escape(_HASHES.sub("\0", name)).replace("\0", r"-?\d+") + "$")
    removed = []
    for path in folder.iterdir():
        if path.is_file() and path.name != "key.json" and not regex.fullmatch(path.name):
            path.unlink()
            removed.append(path.as_posix())
    return sorted(removed)
