"""Colour conversion through OpenImageIO's built-in OpenColorIO studio config (``ocio://studio-config-latest``).

The config is named on every call, so a studio's ``$OCIO`` never changes what a name means or
how a plate is converted: without that, OpenImageIO reads ``$OCIO``, and a show config that
lacks these names (or a path OpenImageIO cannot load, which falls back to its 12-space
stand-in) made every EXR frame fail with "cannot convert" (measured with OpenImageIO 3.2).

Every conversion goes through :func:`OpenImageIO.ImageBufAlgo.colorconvert`; there are no
hand-written transfer curves here. Names are whatever the built-in config knows, including its
aliases: ``lin_rec709`` (= ``linear``, "Linear Rec.709 (sRGB)"), ``ACEScg``, ``ACES2065-1``
(= ``aces``), ``ACEScct``, ``srgb`` ("sRGB Encoded Rec.709 (sRGB)"), ``Raw`` (= ``data``) …
The studio config is OpenColorIO's CG config (``ocio://default``: the same names and transforms) plus the
camera spaces plates arrive in: ``ARRI LogC3 (EI800)`` (= ``arri_logc3_ei800``), ``ARRI LogC4``, ``S-Log3
S-Gamut3`` (= ``slog3_sgamut3``), ``Log3G10 REDWideGamutRGB``, ``V-Log V-Gamut``, Canon, Blackmagic, DJI and
Apple logs, their linear gamuts, and ``ADX10``/``ADX16`` film scans.

Pitfall (deps.md §6): ``linear`` means linear Rec.709, while the role ``scene_linear`` means
ACEScg in the built-in config. SparseMat's default linear space is ``lin_rec709``.
"""

from __future__ import annotations

import functools

import numpy as np
import OpenImageIO as oiio

from sparsemat.errors import SettingsError

#: How errors name the setting: the node's knob, and the command line's flag.
COLOURSPACE_SETTING = "Plate colour space (--input-colorspace)"
#: The OpenColorIO config every name and conversion here refers to, whatever ``$OCIO`` says.
CONFIG = "ocio://studio-config-latest"
#: Default space of float/half plates (EXR): scene-linear Rec.709 primaries.
DEFAULT_LINEAR = "lin_rec709"
#: Default space of integer plates (PNG/JPEG/8- or 16-bit TIFF) and what the network sees.
DISPLAY_SRGB = "srgb"


#: Linear colour spaces an EXR names by its ``chromaticities`` header attribute (OpenEXR stores no transfer curve:
#: its pixels are linear), as (red xy, green xy, blue xy, white xy).
CHROMATICITY_SPACES: tuple[tuple[str, str, tuple[float, ...]], ...] = (
    ("ACES2065-1", "AP0", (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)),
    ("ACEScg", "AP1", (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)),
    ("lin_rec709", "Rec.709", (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329)),
    ("Linear Rec.2020", "Rec.2020", (0.708, 0.292, 0.17, 0.797, 0.131, 0.046, 0.3127, 0.329)),
    ("Linear P3-D65", "P3-D65", (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329)),
)


def colorspace_from_chromaticities(values: object) -> tuple[str, str] | None:
    """``(colour space, primaries name)`` for an EXR ``chromaticities`` attribute, or None when it names none of
    :data:`CHROMATICITY_SPACES` (each of the 8 coordinates within 0.002)."""
    try:
        xy = [float(v) for v in values]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if len(xy) != 8:
        return None
    for space, primaries, ref in CHROMATICITY_SPACES:
        if all(abs(a - b) <= 0.002 for a, b in zip(xy, ref, strict=True)):
            return space, primaries
    return None


@functools.lru_cache(maxsize=1)
def _config() -> oiio.ColorConfig:
    return oiio.ColorConfig(CONFIG)


def known_colorspaces() -> list[str]:
    """Names of the colour spaces of OpenImageIO's built-in OCIO config (aliases not listed)."""
    return list(_config().getColorSpaceNames())


@functools.lru_cache(maxsize=64)
def resolve_colorspace(name: str) -> str:
    """Canonical OCIO name for ``name`` (an exact name, an alias or a role).

    Raises :class:`~sparsemat.errors.SettingsError` (knob ``colorspace``) listing the known
    names when the built-in config does not know ``name``.
    """
    cfg = _config()
    resolved = cfg.resolve(name) if name else ""
    if not name or cfg.getColorSpaceIndex(resolved) < 0:
        raise SettingsError(
            COLOURSPACE_SETTING, name,
            "OpenImageIO's built-in OpenColorIO config has no such colour space; known names are "
            + ", ".join(known_colorspaces()) + " (aliases such as lin_rec709, linear, srgb, ACEScg, aces also work)",
        )
    return str(resolved)


def same_colorspace(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same colour space of the built-in config."""
    return resolve_colorspace(a) == resolve_colorspace(b)


def _colorconvert(pixels: np.ndarray, src_name: str, dst_name: str) -> np.ndarray:
    """``[H, W, 3]`` float32 through ImageBufAlgo.colorconvert (canonical names)."""
    buf = oiio.ImageBuf(np.ascontiguousarray(pixels, dtype=np.float32))
    if not oiio.ImageBufAlgo.colorconvert(buf, buf, src_name, dst_name, colorconfig=CONFIG):
        raise SettingsError(COLOURSPACE_SETTING, src_name, f"OpenColorIO cannot convert {src_name} to {dst_name}: {buf.geterror()}")
    return np.asarray(buf.get_pixels(oiio.FLOAT), dtype=np.float32).reshape(pixels.shape)


@functools.lru_cache(maxsize=16)
def half_table(src: str, dst: str) -> np.ndarray | None:
    """OCIO's result for every float16 value, when ``src → dst`` acts on each channel alone.

    Returns ``[65536]`` float32 indexed by the float16 bit pattern (``h.view(np.uint16)``), with
    NaN for the NaN/Inf codes, or None for transforms that mix channels (gamut matrices such as
    ACEScg → sRGB). The table is OpenColorIO's own output for all 65536 inputs, so a lookup gives
    the same numbers as converting the half pixels with ImageBufAlgo.colorconvert, about 4×
    faster on a 4K plate. Checked on random colours before use.
    """
    src_name, dst_name = resolve_colorspace(src), resolve_colorspace(dst)
    values = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    finite = np.isfinite(values)
    ramp = np.repeat(np.where(finite, values, 0.0)[:, None], 3, axis=1).reshape(256, 256, 3)
    flat = _colorconvert(ramp, src_name, dst_name).reshape(65536, 3)
    table = flat[:, 0].copy()
    if not (np.array_equal(flat[:, 1], table, equal_nan=True) and np.array_equal(flat[:, 2], table, equal_nan=True)):
        return None
    rng = np.random.default_rng(0)
    probe = (rng.random((32, 32, 3)) * 4.0 - 0.5).astype(np.float16)
    direct = _colorconvert(probe.astype(np.float32), src_name, dst_name)
    if not np.allclose(table[probe.view(np.uint16)], direct, rtol=1e-6, atol=1e-7, equal_nan=True):
        return None
    table[~finite] = np.nan
    table.flags.writeable = False
    return table


def convert(rgb: np.ndarray, src: str, dst: str = DISPLAY_SRGB) -> np.ndarray:
    """Convert pixels from colour space ``src`` to ``dst`` with ImageBufAlgo.colorconvert.

    Args:
        rgb: ``[H, W, 3]`` float32 (float16 accepted), in ``src``; not modified.
        src: OCIO name of the pixels' space (see :func:`resolve_colorspace`).
        dst: OCIO name of the result's space; default display-referred sRGB.

    Returns:
        ``[H, W, 3]`` float32 in ``dst``, not clipped (linear highlights stay above 1).
        A new array, also when ``src`` and ``dst`` are the same space. float16 input of a
        per-channel transform goes through :func:`half_table` (same numbers, faster); NaN/Inf
        half input then gives NaN.
    """
    src_name, dst_name = resolve_colorspace(src), resolve_colorspace(dst)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"convert expects [H, W, 3] pixels, got shape {rgb.shape}")
    if src_name == dst_name:
        return np.array(rgb, dtype=np.float32, copy=True)
    if rgb.dtype == np.float16:
        table = half_table(src_name, dst_name)
        if table is not None:
            return table[rgb.view(np.uint16)]
    return _colorconvert(rgb, src_name, dst_name)
