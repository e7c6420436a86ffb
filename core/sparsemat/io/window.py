"""Data and display windows of an image, and how a matte's window lines up with a plate's.

EXR stores pixels only inside the *data window*; the *display window* is the frame (the format in
Nuke). A roto or keyer matte written by Nuke carries its bounding box as data window, and a plate
with overscan has a data window larger than its display window, so the two arrays only line up
through their windows, never by array index. Outside its data window an image is zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import OpenImageIO as oiio


@dataclass(frozen=True)
class Window:
    """Data window (pixels stored) and display window (the frame) of an image, in pixels.

    ``x, y, width, height`` is the data window, ``full_*`` the display window (OpenImageIO's
    ``ImageSpec`` fields; y points down). Overscan = data window larger than the display window.
    """

    x: int
    y: int
    width: int
    height: int
    full_x: int
    full_y: int
    full_width: int
    full_height: int

    @classmethod
    def from_spec(cls, spec: oiio.ImageSpec) -> Window:
        """Copy both windows out of an ``ImageSpec``."""
        return cls(spec.x, spec.y, spec.width, spec.height, spec.full_x, spec.full_y, spec.full_width, spec.full_height)

    @classmethod
    def full(cls, width: int, height: int) -> Window:
        """Data window = display window = ``width × height`` at the origin."""
        return cls(0, 0, width, height, 0, 0, width, height)

    def apply(self, spec: oiio.ImageSpec) -> None:
        """Set both windows on ``spec`` (its width/height must already match)."""
        spec.x, spec.y = self.x, self.y
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = (
            self.full_x, self.full_y, self.full_width, self.full_height,
        )

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
