"""Write frames atomically with OpenImageIO.

:func:`write_frame` writes to a hidden temp file in the destination folder
(``.plate.1001.tmp-<host>-<pid>.exr``: same folder, so the final rename never crosses file systems;
same extension, so OpenImageIO picks the same format), fsyncs it, then renames it over the
final name with :func:`os.replace`. A final name therefore exists only for a complete file,
which makes resume (:func:`is_complete`) safe after a crash or a killed farm task; any failure
removes the temp file.

Arrays are always handed to OpenImageIO as ``[H, W, C]``: OpenImageIO 3.2.2 crashes on a 2-D
single-channel array (deps.md, "OpenImageIO pitfall").
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import warnings
from collections.abc import Collection, Mapping

import numpy as np
import OpenImageIO as oiio

from sparsemat.errors import OutputError
from sparsemat.io.reader import _open, oiio_message
from sparsemat.io.sequence import frame_path, has_frame_token
from sparsemat.io.window import Window

MetadataValue = str | float | int
#: Prefix of every SparseMat header attribute in written files.
METADATA_PREFIX = "sparsemat:"
#: Lossless EXR compressions allowed for mattes (zip, zips, piz, rle, none); lossy ones are refused.
LOSSLESS_EXR = ("zip", "zips", "piz", "rle", "none")
#: Default EXR compression: lossless zip, one scanline per block (Nuke's Write default). 4K RGBA
#: half on 2 idle cores: zips 478 ms, zip 472 ms, piz 521 ms (min of 7); with other jobs on the
#: cores zips stayed fastest (e.g. 0.6 s vs 0.8 s zip, 0.9 s piz). dwaa is lossy: refused.
DEFAULT_COMPRESSION = "zips"
_STANDARD = ("R", "G", "B", "A")
_INTEGER_FORMATS = {".png": 8, ".jpg": 8, ".jpeg": 8, ".tif": 16, ".tiff": 16}


def _ordered(channels: Mapping[str, np.ndarray]) -> list[str]:
    """R, G, B, A first (those present), then the other channels in the caller's order."""
    return [c for c in _STANDARD if c in channels] + [c for c in channels if c not in _STANDARD]


def _stack(channels: Mapping[str, np.ndarray], names: list[str], dtype: type) -> np.ndarray:
    """Stack ``[H, W]`` planes into one ``[H, W, C]`` array (never 2-D, see module docs)."""
    shapes = {name: np.shape(channels[name])[:2] for name in names}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"all channels must have the same [H, W] shape, got {shapes}")
    height, width = next(iter(shapes.values()))
    out: np.ndarray = np.empty((height, width, len(names)), dtype=dtype)
    for i, name in enumerate(names):
        plane = np.asarray(channels[name])
        if plane.ndim == 3 and plane.shape[2] == 1:
            plane = plane[:, :, 0]
        if plane.ndim != 2:
            raise ValueError(f"channel '{name}' must be [H, W], got shape {plane.shape}")
        out[:, :, i] = plane
    return out


def is_integer_format(path: str) -> bool:
    """True when ``path``'s extension is an integer, display-referred format (PNG, JPEG, TIFF as written here)."""
    return os.path.splitext(path)[1].lower() in _INTEGER_FORMATS


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0]) or "host"


def temp_path(path: str) -> str:
    """Hidden temp name next to ``path`` with the same extension: ``.name.tmp-<host>-<pid>.ext``.

    The host name keeps two farm hosts whose processes share a pid (containers often do) from writing
    the same temp file when they render the same frame onto shared storage."""
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.tmp-{_host_tag()}-{os.getpid()}{ext}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def remove_stale_temps(folder: str) -> list[str]:
    """Delete the temp files (:func:`temp_path`) in ``folder`` that a process of *this* host left when it was killed
    (SIGKILL, out of memory, a power cut): their pid no longer runs. Other hosts' temp files, and those of live
    processes, are left alone (they may be writing now). Returns the paths removed."""
    pattern = re.compile(r"^\..+\.tmp-" + re.escape(_host_tag()) + r"-(\d+)\.[^.]+$")
    removed = []
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    for name in names:
        match = pattern.match(name)
        if match and int(match.group(1)) != os.getpid() and not _running(int(match.group(1))):
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                os.remove(path)
                removed.append(path)
    return removed


def _write_oiio(tmp: str, spec: oiio.ImageSpec, pixels: np.ndarray) -> None:
    """Write ``pixels`` ``[H, W, C]`` to ``tmp`` with ``spec``; OutputError with OIIO's message."""
    out = oiio.ImageOutput.create(tmp)
    if out is None:
        raise OutputError(f"OpenImageIO has no writer for this format ({oiio_message(oiio.geterror())}).")
    try:
        if not out.open(tmp, spec):
            raise OutputError(f"OpenImageIO could not create the temp file {tmp} ({oiio_message(out.geterror())}).")
        if not out.write_image(pixels):
            raise OutputError(f"OpenImageIO failed while writing the temp file {tmp} ({oiio_message(out.geterror())}).")
    except BaseException:
        out.close()
        raise
    if not out.close():
        raise OutputError(f"OpenImageIO failed while finishing the temp file {tmp} ({oiio_message(out.geterror())}).")


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        _fsync(folder)


def prepare_output_folder(path: str) -> str:
    """Create the folder of output ``path`` if needed and check it is writable; return the folder.

    Raises:
        OutputError: the folder cannot be created or written (the message names the folder).
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {folder}: {exc.strerror or exc}. "
                          "Check the output path and permissions.") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"The output folder {folder} is not writable. Check permissions or pick another folder.")
    return folder


def write_frame(
    path: str,
    channels: Mapping[str, np.ndarray],
    *,
    window: Window | None = None,
    half: bool = True,
    metadata: Mapping[str, MetadataValue] | None = None,
    compression: str = DEFAULT_COMPRESSION,
    bits: int | None = None,
    frame: int | None = None,
    float_channels: Collection[str] = (),
    carry: Collection[tuple[str, oiio.TypeDesc, object]] = (),
) -> str:
    """Write one frame atomically; return the final path.

    Args:
        path: destination file; the extension picks the format (``.exr``, ``.png``, ``.tif`` …).
            Missing folders are created.
        channels: channel name → ``[H, W]`` array (float32/float16, any range; ``A`` in [0, 1]).
            ``R, G, B, A`` are written first, then extras such as ``sparsity.active``.
        window: data and display window, normally ``plate.window``, so overscan and offsets
            survive; default: both ``W × H`` at the origin. Its size must match the arrays.
        half: EXR pixel type: half (default) or float32.
        float_channels: channels stored as 32-bit float even with ``half`` (EXR): a float plate's own
            RGB, which half would round (0.1234567 → 0.12347) or overflow (above 65504 → inf).
        carry: ``(name, TypeDesc, value)`` header attributes copied as they are, normally the plate's
            :attr:`~sparsemat.io.reader.Plate.carried` (timecode, frame rate, EXR colour description). The
            ``openexr:`` colour description goes only into EXR files (integer outputs hold display sRGB).
        metadata: header attributes, stored as ``sparsemat:<key>`` (EXR; other formats keep what
            they can). Values: str, int, float (stored as 32-bit float; bool as int).
        compression: EXR compression; must be lossless because the matte is data: ``zips``
            (default: zip, 1 scanline per block, as Nuke's Write node), ``zip`` (16 scanlines,
            ~1% smaller), ``piz``, ``rle``, ``none``.
        frame: frame number when ``path`` is a pattern (``out.####.exr``).
        bits: PNG/TIFF bit depth, 8 or 16 (default 8 for PNG/JPEG, 16 for TIFF). Integer formats
            keep only R, G, B, A (JPEG: no A; others are dropped with a UserWarning) and clip to
            [0, 1]; values are written as given (RGB is not divided by A), so pass display-referred
            colour there. PNG and JPEG cannot store data/display windows (the data window becomes
            the image).

    Raises:
        OutputError: the folder cannot be created/written, or OpenImageIO fails (message
            names the file). Nothing is left behind on failure.
    """
    if not channels:
        raise ValueError("write_frame needs at least one channel")
    if has_frame_token(path):
        if frame is None:
            raise ValueError(f"{path} is a frame pattern; pass frame=")
        path = frame_path(path, frame)
    ext = os.path.splitext(path)[1].lower()
    integer = is_integer_format(path)
    names = _ordered(channels)
    if integer:
        allowed: tuple[str, ...] = _STANDARD
        if ext in (".jpg", ".jpeg") and any(c in channels for c in "RGB"):
            allowed = ("R", "G", "B")  # JPEG has no alpha; an alpha-only frame is written as grey
        dropped = [n for n in names if n not in allowed]
        if dropped:
            warnings.warn(f"{path}: {ext} files cannot hold the channel(s) {', '.join(dropped)}; "
                          "they are not written. Write EXR to keep them.", UserWarning, stacklevel=2)
        names = [n for n in names if n in allowed]
        if not names:
            raise OutputError(f"{path}: nothing to write; {ext} keeps only R, G, B, A channels.")
        depth = bits or _INTEGER_FORMATS[ext]
        if depth not in (8, 16):
            raise ValueError(f"bits must be 8 or 16, got {bits}")
        pixel_format = oiio.UINT8 if depth == 8 else oiio.UINT16
        pixels = np.clip(_stack(channels, names, np.float32), 0.0, 1.0)
    else:
        if ext == ".exr" and compression.split(":")[0].lower() not in LOSSLESS_EXR:
            raise ValueError(f"compression '{compression}' is lossy or unknown; use one of {', '.join(LOSSLESS_EXR)}")
        pixel_format = oiio.HALF if half else oiio.FLOAT
        wide = half and any(n in float_channels for n in names)
        pixels = _stack(channels, names, np.float16 if half and not wide else np.float32)
    height, width = pixels.shape[:2]
    spec = oiio.ImageSpec(width, height, len(names), pixel_format)
    spec.channelnames = tuple(names)
    if integer:
        # the RGB handed over is straight colour: stop OpenImageIO from dividing it by A on write
        spec.attribute("oiio:UnassociatedAlpha", 1)
    elif wide:
        spec.channelformats = tuple(oiio.TypeDesc(oiio.FLOAT if n in float_channels else oiio.HALF) for n in names)
    spec.alpha_channel = names.index("A") if "A" in names else -1
    if window is not None:
        if window.shape != (height, width):
            raise ValueError(f"window is {window.width}×{window.height} but the channels are {width}×{height}")
        window.apply(spec)
    if not integer:
        spec.attribute("compression", compression)
    for name, type_desc, value in carry:
        if ext == ".exr" or not name.startswith("openexr:"):
            spec.attribute(name, type_desc, value)
    for key, value in (metadata or {}).items():
        name = key if key.startswith(METADATA_PREFIX) else METADATA_PREFIX + key
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, (np.integer, np.floating)):
            value = value.item()
        elif not isinstance(value, (str, int, float)):
            value = str(value)  # lists, paths …: stored as text
        spec.attribute(name, value)

    final = os.path.abspath(path)
    folder = prepare_output_folder(final)
    tmp = temp_path(final)
    try:
        try:
            _write_oiio(tmp, spec, pixels)
        except OutputError as exc:
            raise OutputError(f"Cannot write {final}: {exc} Check free disk space and permissions in {folder}.") from exc
        _fsync(tmp)
        os.replace(tmp, final)
    except OSError as exc:
        raise OutputError(f"Cannot write {final}: {exc.strerror or exc} (folder {folder}).") from exc
    finally:
        if os.path.lexists(tmp):
            with contextlib.suppress(OSError):
                os.remove(tmp)
    _fsync_dir(folder)
    return final


def is_complete(path: str, *, full: bool = True) -> bool:
    """True when ``path`` exists and OpenImageIO reads it completely (every part).

    With ``full=False`` only the header is checked (fast; enough for files written by
    :func:`write_frame`, whose final name appears only once the file is complete).
    """
    if not os.path.isfile(path):
        return False
    inp = oiio.ImageInput.open(path)
    if inp is None:
        oiio.geterror()  # clear the message
        return False
    try:
        part = 0
        while inp.seek_subimage(part, 0):
            if full:
                spec = inp.spec()
                pixels = inp.read_image(part, 0, 0, spec.nchannels, oiio.UNKNOWN)
                if pixels is None or inp.has_error:
                    inp.geterror()
                    return False
            part += 1
        return part > 0
    finally:
        inp.close()


def read_metadata(path: str, prefix: str = METADATA_PREFIX) -> dict[str, MetadataValue]:
    """Header attributes of ``path`` whose name starts with ``prefix``, prefix removed.

    ``prefix=""`` returns every attribute. Raises :class:`~sparsemat.errors.InputError` when
    the file cannot be opened.
    """
    inp = _open(path, None)
    try:
        spec = inp.spec()
        result: dict[str, MetadataValue] = {}
        for attr in spec.extra_attribs:
            if attr.name.startswith(prefix) and isinstance(attr.value, (str, int, float)):
                result[attr.name[len(prefix):]] = attr.value
        return result
    finally:
        inp.close()
