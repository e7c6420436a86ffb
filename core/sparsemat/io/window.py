"""Data and display windows of an image, its pixel aspect, and how a matte's window lines up with a plate's.

EXR stores pixels only inside the *data window*; the *display window* is the frame (the format in
Nuke). A roto or keyer matte written by Nuke carries its bounding box as data window, and a plate
with overscan has a data window larger than its display window, so the two arrays only line up
through their windows, never by array index. Outside its data window an image is zero.

The pixel aspect ratio (a pixel's width over its height: 2.0 for a 2x anamorphic plate) belongs with the
windows: it is part of the format in Nuke and of the EXR header's geometry, and a matte written for a plate
keeps it so that it reads back in the plate's format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import OpenImageIO as oiio

#: Pixel aspect ratios outside this range are not a format (a corrupt or mis-set header): read as 1.0.
PIXEL_ASPECT_RANGE = (0.1, 10.0)


def valid_pixel_aspect(value: float) -> bool:
    """True if ``value`` is a usable pixel aspect ratio (finite, within :data:`PIXEL_ASPECT_RANGE`)."""
    return math.isfinite(value) and PIXEL_ASPECT_RANGE[0] <= value <= PIXEL_ASPECT_RANGE[1]


@dataclass(frozen=True)
class Window:
    """Data window (pixels stored) and display window (the frame) of an image, in pixels.

    ``x, y, width, height`` is the data window, ``full_*`` the display window (OpenImageIO's
    ``ImageSpec`` fields; y points down). Overscan = data window larger than the display window.
    ``pixel_aspect`` is the width of a pixel over its height (OpenImageIO's ``PixelAspectRatio``: the
    EXR header's ``pixelAspectRatio``, DPX's, PNG's ``pHYs``, TIFF's resolutions), 1.0 for square pixels.
    """

    x: int
    y: int
    width: int
    height: int
    full_x: int
    full_y: int
    full_width: int
    full_height: int
    pixel_aspect: float = 1.0

    @classmethod
    def from_spec(cls, spec: oiio.ImageSpec) -> Window:
        """Copy both windows and the pixel aspect out of an ``ImageSpec`` (an unusable aspect reads as 1.0)."""
        aspect = float(spec.get_float_attribute("PixelAspectRatio", 1.0))
        return cls(spec.x, spec.y, spec.width, spec.height, spec.full_x, spec.full_y, spec.full_width, spec.full_height,
                   aspect if valid_pixel_aspect(aspect) else 1.0)

    @classmethod
    def full(cls, width: int, height: int) -> Window:
        """Data window = display window = ``width × height`` at the origin."""
        return cls(0, 0, width, height, 0, 0, width, height)

    def apply(self, spec: oiio.ImageSpec) -> None:
        """Set both windows and a non-square pixel aspect on ``spec`` (its width/height must already match)."""
        spec.x, spec.y = self.x, self.y
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = (
            self.full_x, self.full_y, self.full_width, self.full_height,
        )
        if self.pixel_aspect != 1.0:
            spec.attribute("PixelAspectRatio", float(self.pixel_aspect))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the data window: the shape of every pixel array."""
        return (self.height, self.width)

    @property
    def differs_from_display(self) -> bool:
        """True for overscan, crops or offsets (data window ≠ display window)."""
        return (self.x, self.y, self.width, self.height) != (self.full_x, self.full_y, self.full_width, self.full_height)


def region_of(matte: np.ndarray, src: Window, dst: Window) -> np.ndarray:
    """The part of ``matte`` that covers ``dst``'s data window, zero where the matte stores nothing.

    Args:
        matte: ``[src.height, src.width]`` float32 pixels of ``src``'s data window.
        src: windows of the matte file.
        dst: windows of the plate the matte belongs to.

    Returns:
        ``[h, w]`` float32. When both display windows have the same size (the usual case: roto at
        the plate's format, with any bounding box) the matte is placed by display coordinates and
        ``(h, w) == dst.shape`` exactly. A matte of another format (a proxy or low-resolution
        prior) is cut to the same region of *its* frame, scaled by the ratio of the display
        windows and rounded to whole matte pixels, for the engine to resize to the plate.
    """
    sx = src.full_width / dst.full_width
    sy = src.full_height / dst.full_height
    x0 = src.full_x + round((dst.x - dst.full_x) * sx)
    y0 = src.full_y + round((dst.y - dst.full_y) * sy)
    width = max(1, round(dst.width * sx))
    height = max(1, round(dst.height * sy))
    if (x0, y0, width, height) == (src.x, src.y, src.width, src.height):
        return np.asarray(matte, dtype=np.float32)
    out = np.zeros((height, width), dtype=np.float32)
    # overlap of the wanted rectangle and the matte's data window, in absolute pixel coordinates
    ax0, ay0 = max(x0, src.x), max(y0, src.y)
    ax1, ay1 = min(x0 + width, src.x + src.width), min(y0 + height, src.y + src.height)
    if ax0 < ax1 and ay0 < ay1:
        out[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] = matte[ay0 - src.y:ay1 - src.y, ax0 - src.x:ax1 - src.x]
    return out
