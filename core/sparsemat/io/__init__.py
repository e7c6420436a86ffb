"""Image I/O for SparseMat: OpenImageIO readers and writers, frame sequences, OCIO colour.

- :func:`read_plate` (alias :func:`read_image`) → :class:`Plate` (display sRGB for the network,
  untouched source RGB, alpha, data/display :class:`Window`, channel names).
- :func:`read_matte` → ``[h, w]`` float32 in [0, 1].
- :mod:`sparsemat.io.channels`: which channels hold the plate (:func:`find_rgb`, layers, parts, stereo views:
  :func:`file_views`).
- :func:`write_frame` (atomic), :func:`is_complete`, :func:`read_metadata`.
- :class:`Sequence`, :func:`frame_path`, :func:`discover_frames`, :func:`parse_frame_range`,
  :func:`missing_frames`.
- :func:`convert`, :func:`resolve_colorspace`, :func:`known_colorspaces` (built-in OCIO config).
- :func:`set_threads` (OpenImageIO/OpenEXR pools); ``python -m sparsemat.io.timing`` measures
  4K read/write times.

OpenImageIO releases the GIL while encoding and decoding, so a caller can write frame N on a
thread while computing frame N + 1.
"""

from __future__ import annotations

from sparsemat.io.channels import file_views, find_rgb
from sparsemat.io.colour import (
    DEFAULT_LINEAR,
    DISPLAY_SRGB,
    convert,
    known_colorspaces,
    resolve_colorspace,
    same_colorspace,
)
from sparsemat.io.reader import (
    CLIP_WARN_SHARE,
    Plate,
    channel_names,
    read_image,
    read_matte,
    read_plate,
    resolve_path,
    set_threads,
)
from sparsemat.io.sequence import (
    Sequence,
    discover_frames,
    format_frames,
    frame_path,
    has_frame_token,
    missing_frames,
    parse_frame_range,
)
from sparsemat.io.window import Window, region_of
from sparsemat.io.writer import (
    DEFAULT_COMPRESSION,
    LOSSLESS_EXR,
    METADATA_PREFIX,
    is_complete,
    is_integer_format,
    prepare_output_folder,
    read_metadata,
    remove_stale_temps,
    temp_path,
    write_frame,
)

__all__ = [
    "CLIP_WARN_SHARE",
    "DEFAULT_COMPRESSION",
    "DEFAULT_LINEAR",
    "DISPLAY_SRGB",
    "LOSSLESS_EXR",
    "METADATA_PREFIX",
    "Plate",
    "Sequence",
    "Window",
    "channel_names",
    "convert",
    "discover_frames",
    "file_views",
    "find_rgb",
    "format_frames",
    "frame_path",
    "has_frame_token",
    "is_complete",
    "is_integer_format",
    "prepare_output_folder",
    "remove_stale_temps",
    "known_colorspaces",
    "missing_frames",
    "parse_frame_range",
    "read_image",
    "read_matte",
    "read_metadata",
    "read_plate",
    "resolve_colorspace",
    "region_of",
    "resolve_path",
    "same_colorspace",
    "set_threads",
    "temp_path",
    "write_frame",
]
