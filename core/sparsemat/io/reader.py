"""Read plates and mattes with OpenImageIO.

:func:`read_plate` returns a :class:`Plate`: the pixels the network sees (display-referred sRGB
in [0, 1]) plus the untouched source RGB, the alpha, the data/display windows and the channel
names, so a writer can put the plate's own colour back next to the refined matte.

Out-of-range policy (display-referred values the network sees): scene-linear plates normally
have highlights above 1 (speculars, sky, practicals) and wide-gamut plates (ACEScg) have small
negative values after conversion to sRGB. Both are clipped to [0, 1] silently, because the
network was trained on [0, 1] and an artist cannot act on a warning about every bright frame.
Only when more than :data:`CLIP_WARN_SHARE` of the pixels are outside [-0.01, 1.01] is an
:class:`~sparsemat.errors.InputWarning` raised: that usually means a wrong input colour space
(e.g. a log or display plate read as linear) or a plate exposed far too hot, and the matte will
lack edges in the clipped areas. Non-finite pixels (NaN → 0, ±Inf → ±largest finite value)
always warn, with the pixel count; they are cleaned only in what the network sees, while
:attr:`Plate.source_rgb` stays bit-exact so an rgba output carries the plate's own values.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import OpenImageIO as oiio

from sparsemat.errors import InputError, InputWarning, MissingFrameError
from sparsemat.io.channels import (
    choose_part,
    describe_channels,
    file_views,
    find_channel,
    find_rgb,
    layer_channels,
    part_name,
    pick_view,
    view_channels,
)
from sparsemat.io.colour import (
    DEFAULT_LINEAR,
    DISPLAY_SRGB,
    colorspace_from_chromaticities,
    convert,
    resolve_colorspace,
)
from sparsemat.io.sequence import frame_path, has_frame_token
from sparsemat.io.window import Window, region_of

#: Share of pixels outside [-0.01, 1.01] (display-referred) above which reading warns.
CLIP_WARN_SHARE = 0.2
#: Header attributes (OpenImageIO names) that describe the plate's time and colour rather than how its pixels are
#: stored. Outputs written for a plate carry them (:attr:`Plate.carried`), as Nuke's Write keeps timecode and rate by
#: default, so a matte conforms in editorial like its plate: SMPTE timecode and film key code, frame rate, and the
#: EXR colour description (chromaticities, white luminance, adopted neutral) of the RGB an ``rgba`` output writes back.
CARRIED_ATTRIBUTES = (
    "smpte:TimeCode", "smpte:KeyCode", "FramesPerSecond",
    "openexr:chromaticities", "openexr:whiteLuminance", "openexr:adoptedNeutral",
)
_CLIP_TOLERANCE = 0.01


@dataclass
class Plate:
    """One plate frame, as read by :func:`read_plate`. All arrays cover the data window.

    Attributes:
        rgb: ``[H, W, 3]`` float32, display-referred sRGB in [0, 1] (non-finite cleaned,
            clipped): what the network sees.
        source_rgb: ``[H, W, 3]`` the file's RGB values untouched, in :attr:`colorspace`:
            float16 for half files, float32 otherwise (integer files as 0-1 floats); NaN/Inf
            kept; read-only (possibly a view). Write this back for rgba output.
        alpha: ``[H, W]`` float32 as stored (NaN → 0, not clipped), or None without alpha.
        window: data and display windows.
        channel_names: every channel name of the part that was read.
        rgb_channels: names of the channels used as R, G, B.
        alpha_channel: name of the channel used as alpha, or None.
        path: file actually read.
        frame: frame number requested, or None.
        colorspace: canonical OCIO name of the source pixels.
        colorspace_source: why that space (``--input-colorspace``, the header's chromaticities, the file type's
            default …; :func:`detect_colorspace`).
        part: index of the EXR part (subimage) read; part_name its name ("" if unnamed).
        pixel_type: stored type of the RGB channels ("half", "float", "uint8", "uint16" …).
        nonfinite_pixels: number of pixels with a NaN/Inf in R, G or B.
        attributes: the part's header attributes with a text or number value, by OpenImageIO name.
        view: the view read from a stereo (multi-view) EXR, "" for a one-view image; views: all its views.
        carried: ``(name, TypeDesc, value)`` of the plate's :data:`CARRIED_ATTRIBUTES` (timecode, rate, colour
            description), to hand to :func:`~sparsemat.io.writer.write_frame` ``carry=``.
    """

    rgb: np.ndarray
    source_rgb: np.ndarray
    alpha: np.ndarray | None
    window: Window
    channel_names: tuple[str, ...]
    rgb_channels: tuple[str, str, str]
    alpha_channel: str | None
    path: str
    frame: int | None = None
    colorspace: str = "Linear Rec.709 (sRGB)"
    colorspace_source: str = "default for half files"
    part: int = 0
    part_name: str = ""
    pixel_type: str = "half"
    nonfinite_pixels: int = 0
    attributes: dict[str, str | float | int] = field(default_factory=dict)
    carried: tuple[tuple[str, oiio.TypeDesc, object], ...] = ()
    view: str = ""
    views: tuple[str, ...] = ()

    @property
    def height(self) -> int:
        """Height of the data window in pixels."""
        return self.window.height

    @property
    def width(self) -> int:
        """Width of the data window in pixels."""
        return self.window.width


def set_threads(threads: int) -> None:
    """Threads OpenImageIO and OpenEXR use for decoding, encoding and colour conversion.

    0 (OpenImageIO's default) means one per CPU core; on a farm host shared by several jobs,
    set it to the cores given to this job. Affects the whole process.
    """
    if threads < 0:
        raise ValueError(f"threads must be 0 (all cores) or more, got {threads}")
    oiio.attribute("threads", int(threads))
    # OpenEXR's own pool: the resolved count (0 reads back as the number of cores; -1 disables)
    oiio.attribute("exr_threads", oiio.get_int_attribute("threads"))


def oiio_message(text: str) -> str:
    """OpenImageIO's (often multi-line, repeated) error text as one line."""
    lines = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    return "; ".join(lines) or "unknown error"


def _where(path: str, frame: int | None) -> str:
    return f"{path} (frame {frame})" if frame is not None else path


def resolve_path(path: str, frame: int | None) -> str:
    """File of ``frame`` when ``path`` is a pattern; ``path`` itself otherwise."""
    if frame is not None and has_frame_token(path):
        return frame_path(path, frame)
    return path


def _open(path: str, frame: int | None) -> oiio.ImageInput:
    if not os.path.exists(path):
        what = f"Frame {frame} is missing" if frame is not None else "File is missing"
        raise MissingFrameError(f"{what}: {path} does not exist. Check the path and frame range.")
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder, not an image: give a file, or a sequence pattern such as "
                         f"{os.path.join(path, 'plate.####.exr')}.")
    # Read colour as stored: without this OpenImageIO premultiplies PNG/TIFF colour by an unassociated
    # alpha (a pixel with A = 0 would read black). EXR is always associated and unaffected.
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(path, config)
    if inp is None:
        raise InputError(f"Cannot open {_where(path, frame)}: {oiio_message(oiio.geterror())}. "
                         "The file may be truncated, still being written, or not an image.")
    return inp


def _open_frame(path: str, frame: int | None) -> tuple[str, str, oiio.ImageInput]:
    """``(file, where, input)`` for ``frame`` of ``path`` (a pattern needs a frame); ``where`` names the file and
    frame in messages."""
    if frame is None and has_frame_token(path):
        raise InputError(f"{path} is a frame pattern; give the frame number to read.")
    file = resolve_path(path, frame)
    return file, _where(file, frame), _open(file, frame)


def _subimages(inp: oiio.ImageInput) -> list[oiio.ImageSpec]:
    specs = []
    index = 0
    while inp.seek_subimage(index, 0):
        specs.append(inp.spec().copy())
        index += 1
    inp.geterror()  # clear "could not seek to subimage N" left by the probe past the last part
    inp.seek_subimage(0, 0)
    return specs


def _type_name(spec: oiio.ImageSpec, channel: int) -> str:
    formats = spec.channelformats
    fmt = formats[channel] if formats else spec.format
    return str(fmt)


def _read_deep(file: str, part: int, first: int, last: int, where: str) -> np.ndarray:
    """Channels ``first..last`` of a deep ``part``, flattened (samples composited front to back), ``[H, W, C]`` float32.

    A deep render (Nuke's DeepWrite, a renderer's deep EXR) has a list of samples per pixel; read flat, its first
    sample or garbage would reach the network. OpenImageIO's ``flatten`` gives what Nuke's DeepToImage shows.
    """
    flat = oiio.ImageBufAlgo.flatten(oiio.ImageBuf(file, part, 0))
    if flat.has_error:
        raise InputError(f"Cannot flatten the deep image {where}: {oiio_message(flat.geterror())}. "
                         "Flatten it in the comp (DeepToImage) and render that.")
    return np.asarray(flat.get_pixels(oiio.FLOAT), dtype=np.float32)[:, :, first:last + 1]


def _read(inp: oiio.ImageInput, part: int, first: int, last: int, half: bool, where: str, file: str) -> np.ndarray:
    """Channels ``first..last`` (inclusive) of ``part`` of ``file`` as ``[H, W, C]`` float32 (or float16)."""
    if inp.spec(part, 0).deep:
        return _read_deep(file, part, first, last, where)
    pixels = inp.read_image(part, 0, first, last + 1, oiio.HALF if half else oiio.FLOAT)
    if pixels is None or inp.has_error:
        raise InputError(f"Cannot read the pixels of {where}: {oiio_message(inp.geterror())}. "
                         "The file may be truncated or still being written; re-render or copy it again.")
    arr = np.asarray(pixels)
    if arr.ndim == 4:  # volume: keep the first slice
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def detect_colorspace(spec: oiio.ImageSpec, pixel_type: str) -> tuple[str, str]:
    """``(colour space, where it came from)`` of a file read without ``--input-colorspace``.

    A float/half file marked as an ACES container (SMPTE ST 2065-4) is ACES2065-1; one whose ``chromaticities``
    name AP0, AP1, Rec.709, Rec.2020 or P3-D65 primaries is that linear space; any other float/half file is
    linear Rec.709 and an integer file (PNG, JPEG, 8/16-bit TIFF) sRGB.
    """
    if pixel_type not in ("half", "float", "double"):
        return DISPLAY_SRGB, f"default for {pixel_type} files"
    if spec.get_int_attribute("openexr:acesImageContainerFlag", 0) == 1:
        return "ACES2065-1", "the file is an ACES container"
    found = colorspace_from_chromaticities(spec.getattribute("openexr:chromaticities"))
    if found is not None:
        return found[0], f"the header's chromaticities: {found[1]} primaries"
    return DEFAULT_LINEAR, f"default for {pixel_type} files"


def _clean(rgb: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    """Copy of ``rgb`` with NaN → 0 and ±Inf → ±65504 (largest half); warns with the pixel count."""
    finite = np.isfinite(rgb)
    if finite.all():
        return rgb, 0
    bad = int(np.count_nonzero(~finite.all(axis=-1)))
    limit = float(np.finfo(np.float16).max)
    warnings.warn(
        f"{where}: {bad} pixel(s) have NaN or infinite values; the matte is computed with NaN as 0 "
        f"and infinity clamped to ±{limit:g} (the plate's own RGB is written back unchanged).",
        InputWarning, stacklevel=3,
    )
    return np.nan_to_num(rgb, nan=0.0, posinf=limit, neginf=-limit), bad


def _clip_display(rgb: np.ndarray, where: str, colorspace: str) -> np.ndarray:
    """Clip display-referred ``rgb`` to [0, 1] in place; warn when a large share was out of range."""
    lo, hi = -_CLIP_TOLERANCE, 1.0 + _CLIP_TOLERANCE
    # cheap pre-check on the extremes; the share is estimated on every 4th row and column
    if float(rgb.min()) < lo or float(rgb.max()) > hi:
        sample = rgb[::4, ::4]
        outside = np.count_nonzero(((sample < lo) | (sample > hi)).any(axis=-1))
        share = outside / max(1, sample.shape[0] * sample.shape[1])
        if share > CLIP_WARN_SHARE:
            warnings.warn(
                f"{where}: {share:.0%} of the pixels are outside 0-1 after converting {colorspace} to sRGB "
                "and are clipped for the matte. Check the plate colour space (--input-colorspace; the node's Plate colour space) or the "
                "plate's exposure; highlights alone are normal and do not trigger this warning.",
                InputWarning, stacklevel=3,
            )
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb


def read_plate(path: str, frame: int | None = None, colorspace: str | None = None, view: str | None = None,
               layer: str | None = None) -> Plate:
    """Read one plate frame with OpenImageIO.

    Args:
        path: an image file, or a pattern (``plate.%04d.exr``, ``plate.####.exr``) with ``frame``.
        frame: frame number for a pattern; with a single file it only labels messages.
        colorspace: OCIO name of the plate's pixels (any name or alias of the built-in config:
            ``lin_rec709``, ``ACEScg``, ``ACES2065-1``, ``ACEScct``, ``srgb`` …). Default
            (:func:`detect_colorspace`): what the header says (an ACES container, the ``chromaticities``' primaries),
            else ``lin_rec709`` for half/float files (EXR), ``srgb`` for integer files (PNG/JPEG/TIFF).
        view: the view of a stereo (multi-view) EXR to read (``left``, ``right`` …, any case); default: its
            hero view (the first). An error names the views when the file lacks it or has none.
        layer: the layer holding the plate's colour (``plate`` for ``plate.R/G/B``, or a part's name), any case;
            default: unprefixed R, G, B, then ``rgba``, ``beauty``, then the first layer with all three.

    Returns:
        a :class:`Plate`; ``rgb`` is ``[H, W, 3]`` float32 display sRGB in [0, 1] over the data
        window. In a multi-part EXR the part named ``rgba``/``beauty`` wins, else the first
        part with R, G, B channels.

    Raises:
        MissingFrameError: the file does not exist (names file and frame).
        InputError: unreadable/truncated file (with OpenImageIO's error) or no RGB channels
            (lists the channels found).
        SettingsError: ``colorspace`` unknown to the built-in OCIO config (lists known names).
    """
    if colorspace is not None:
        resolve_colorspace(colorspace)  # fail before any I/O
    file, where, inp = _open_frame(path, frame)
    try:
        specs = _subimages(inp)
        views = file_views(specs)
        chosen = pick_view(views, view, where)
        candidates = view_channels(specs, views, chosen)
        if layer is not None:
            candidates = layer_channels(specs, candidates, layer)
        picked = choose_part(specs, candidates)
        if picked is None:
            seen = f" of view '{chosen}'" if chosen else ""
            if layer is not None:
                raise InputError(f"{where} has no layer '{layer}' with R, G, B channels{seen}. Channels found: "
                                 f"{describe_channels(specs)}.")
            raise InputError(f"{where} has no R, G, B (or Y) channels{seen} to matte. Channels found: "
                             f"{describe_channels(specs)}. Shuffle the colour into rgba first.")
        part, chans = picked
        spec = specs[part]
        names = tuple(spec.channelnames)
        found = find_rgb([n for _, n in chans])
        if found is None:  # cannot happen: _choose_part checked it
            raise InputError(f"{where}: no R, G, B channels in part {part}")
        (ri, gi, bi), ai = tuple(chans[k][0] for k in found[0]), (chans[found[1]][0] if found[1] is not None else None)
        first, last = min(ri, gi, bi), max(ri, gi, bi)
        if ai is not None and first - 1 <= ai <= last + 1:  # alpha next to RGB: one read
            first, last = min(first, ai), max(last, ai)
        used = [ri, gi, bi] + ([ai] if ai is not None else [])
        half = {_type_name(spec, c) for c in used} == {"half"}
        pixels = _read(inp, part, first, last, half, where, file)
        alpha_pixels = None
        if ai is not None:
            alpha_pixels = (pixels[:, :, ai - first] if first <= ai <= last
                            else _read(inp, part, ai, ai, half, where, file)[:, :, 0])
    finally:
        inp.close()
    pixel_type = _type_name(spec, ri)
    if (gi, bi) == (ri + 1, ri + 2):  # usual layout: a view, no copy
        source_rgb = pixels[:, :, ri - first: ri - first + 3]
    else:
        source_rgb = np.stack([pixels[:, :, c - first] for c in (ri, gi, bi)], axis=-1)
    source_rgb.flags.writeable = False  # the plate's own values: never modified in place
    alpha = None
    if alpha_pixels is not None:
        alpha = alpha_pixels.astype(np.float32)
        if np.isnan(alpha).any():
            alpha = np.nan_to_num(alpha, nan=0.0)
    guessed, source = detect_colorspace(spec, pixel_type) if colorspace is None else (colorspace, "--input-colorspace")
    space = resolve_colorspace(guessed)
    display = convert(source_rgb, space, DISPLAY_SRGB)
    bad = 0
    if not np.isfinite(display).all():  # cheap check on float32; the rare slow path cleans
        clean, bad = _clean(source_rgb, where)
        if bad:
            display = convert(clean, space, DISPLAY_SRGB)
        display = np.nan_to_num(display, nan=0.0, posinf=1.0, neginf=0.0)
    display = _clip_display(display, where, space)
    attributes: dict[str, str | float | int] = {}
    carried: list[tuple[str, oiio.TypeDesc, object]] = []
    for attr in spec.extra_attribs:
        if isinstance(attr.value, (str, int, float)):
            attributes[attr.name] = attr.value
        if attr.name in CARRIED_ATTRIBUTES:
            carried.append((attr.name, attr.type, attr.value))
    return Plate(
        rgb=display, source_rgb=source_rgb, alpha=alpha, window=Window.from_spec(spec), channel_names=names,
        rgb_channels=(names[ri], names[gi], names[bi]), alpha_channel=names[ai] if ai is not None else None,
        path=file, frame=frame, colorspace=space, colorspace_source=source, part=part, part_name=part_name(spec),
        pixel_type=pixel_type, nonfinite_pixels=bad, attributes=attributes, carried=tuple(carried),
        view=chosen or "", views=tuple(views),
    )


#: ``read_image`` is the name used in docs/architecture.md.
read_image = read_plate


def read_matte(path: str, channel: str | None = None, *, frame: int | None = None,
               align_to: Window | None = None, view: str | None = None) -> np.ndarray:
    """Read a matte (external prior or roto) as ``[h, w]`` float32 in [0, 1] over its data window.

    Args:
        path: an image file, or a pattern with ``frame``.
        channel: channel name, case-insensitive (``A``, ``matte.alpha``, or a unique last part
            such as ``alpha``). Default: the ``A``/``alpha`` channel, else the first channel.
        frame: frame number for a pattern.
        align_to: the windows of the plate this matte belongs to. The result then covers the plate's
            data window instead of the matte's own (:func:`sparsemat.io.window.region_of`): a roto
            written with its bounding box as data window lands where it belongs, with 0 outside it.
        view: in a stereo (multi-view) matte, the view to read (default: the hero view); a one-view matte
            serves every view.

    Values are read as stored (no colour conversion: a matte is data), NaN becomes 0 with an
    InputWarning, and everything is clipped to [0, 1].
    """
    file, where, inp = _open_frame(path, frame)
    try:
        specs = _subimages(inp)
        views = file_views(specs)
        chosen = pick_view(views, view, where) if views else None
        found = find_channel(specs, channel, view_channels(specs, views, chosen))
        if found is None:
            raise InputError(f"{where} has no channel '{channel}'. Channels found: {describe_channels(specs)}.")
        part, index = found
        pixels = _read(inp, part, index, index, False, where, file)
        window = Window.from_spec(specs[part])
    finally:
        inp.close()
    matte = np.ascontiguousarray(pixels[:, :, 0], dtype=np.float32)
    nan = np.isnan(matte)
    if nan.any():
        warnings.warn(f"{where}: {int(nan.sum())} matte pixel(s) are NaN and are read as 0.", InputWarning, stacklevel=2)
        matte[nan] = 0.0
    np.clip(matte, 0.0, 1.0, out=matte)
    return matte if align_to is None else region_of(matte, window, align_to)


def channel_names(path: str) -> list[list[str]]:
    """Channel names of every part of ``path`` (one list per part), for messages and UIs."""
    inp = _open(path, None)
    try:
        return [list(s.channelnames) for s in _subimages(inp)]
    finally:
        inp.close()

