"""What ``--resume`` may keep: the key of how a frame's file is made, stored in every output, and the test of an
existing file against it."""

from __future__ import annotations

import argparse
import json

from sparsemat.errors import SparseMatError
from sparsemat.settings import OutputSettings, Settings


def render_key(args: argparse.Namespace, settings: Settings, out: OutputSettings) -> str:
    """Hash of how a frame's file is made: engine version, settings, output mode and overlay, pixel type, and how the
    inputs are read (colour space, pixel aspect, eye, layer, matte channel, whether a matte is given). Stored in every
    output (``sparsemat:render_key``) so that ``--resume`` keeps only frames this very render would write. Input
    *paths* are left out: a farm that mounts the same storage elsewhere must still find the frames made before."""
    import hashlib

    from sparsemat.version import __version__

    blob = json.dumps({
        "version": __version__, "settings": settings.to_dict(), "output": [out.output_mode, out.overlay],
        "half": bool(args.half), "colorspace": args.input_colorspace, "pixel_aspect": args.pixel_aspect,
        "eye": args.eye, "layer": args.layer, "matte": [bool(args.matte), args.prior_channel],
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def made_by(path: str, key: str, settings: Settings) -> bool:
    """True when the complete output ``path`` is what this render would write (same :func:`render_key`).

    A file from before render keys (it names its settings only) counts when its settings match; a file without
    SparseMat metadata (PNG/JPEG hold none, or it came from elsewhere) counts as before: complete is enough.
    """
    from sparsemat.io import read_metadata

    try:
        meta = read_metadata(path)
    except SparseMatError:
        return False
    if "render_key" in meta:
        return meta["render_key"] == key
    if "settings_key" in meta:
        return meta["settings_key"] == settings.pixel_key()
    return True
