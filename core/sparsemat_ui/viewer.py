"""The viewer: numpy compositing (plate, alpha, RGBA, sparsity overlay, A/B wipe) and a zoom/pan widget.

Compositing is plain numpy on display-referred sRGB (``[H, W, 3]`` float32 in [0, 1], what the
engine sees) and ends in ``[H, W, 3]`` uint8, turned into a :class:`QImage` once per change. The
widget draws that image through a view transform (zoom about the cursor, pan by dragging), so
zooming and panning never recomposite. Exposure/gamma for linear plates go through the same
OpenColorIO path as the engine's reader (:func:`sparsemat.io.convert`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PySide6.QtWidgets import QWidget

#: What the viewer can show. ``overlay`` tints refined pixels over the plate.
VIEW_MODES: tuple[str, ...] = ("plate", "alpha", "rgba", "overlay", "prior")
VIEW_LABELS: dict[str, str] = {
    "plate": "Plate", "alpha": "Alpha", "rgba": "RGBA over checkerboard", "overlay": "Sparsity overlay",
    "prior": "Prior alpha",
}

#: Overlay tints (sRGB 0-1) and their opacity, by map.
#:   active: refined by the SHM this frame (spatial ∩ temporal), red;
#:   reused: in the spatial band but unchanged, so the previous frame's matte was kept, blue;
#:   changed: changed since the previous frame but outside the band (not refined), yellow.
OVERLAY_TINTS: dict[str, tuple[tuple[float, float, float], float]] = {
    "active": ((1.0, 0.1, 0.1), 0.6),
    "reused": ((0.1, 0.45, 1.0), 0.45),
    "changed": ((1.0, 0.85, 0.1), 0.25),
}

ZOOM_MIN, ZOOM_MAX = 1.0 / 64.0, 64.0


def display_plate(plate: Any, exposure: float = 0.0, gamma: float = 1.0) -> np.ndarray:
    """The plate as display sRGB, with a viewer exposure (stops, in scene-linear) and gamma.

    Args:
        plate: a :class:`sparsemat.io.Plate` (``rgb`` display sRGB, ``source_rgb`` in ``colorspace``).
        exposure: stops applied in linear Rec.709 before the display transform.
        gamma: display gamma applied after the transform (1 = none).

    Returns:
        ``[H, W, 3]`` float32 display sRGB in [0, 1]. With exposure 0 and gamma 1 this is the
        engine's own input (``plate.rgb``); otherwise the source pixels go through OCIO again.
    """
    if exposure == 0.0 and gamma == 1.0:
        return np.asarray(plate.rgb, dtype=np.float32)
    from sparsemat.io import DEFAULT_LINEAR, DISPLAY_SRGB, convert, same_colorspace

    rgb = plate.source_rgb
    if exposure != 0.0:
        lin = rgb if same_colorspace(plate.colorspace, DEFAULT_LINEAR) else convert(rgb, plate.colorspace, DEFAULT_LINEAR)
        lin = np.nan_to_num(np.asarray(lin, dtype=np.float32) * np.float32(2.0**exposure), nan=0.0)
        out = convert(lin, DEFAULT_LINEAR, DISPLAY_SRGB)
    else:
        out = convert(rgb, plate.colorspace, DISPLAY_SRGB)
    out = np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)
    if gamma != 1.0:
        np.power(out, np.float32(1.0 / max(gamma, 1e-3)), out=out)
    return out.astype(np.float32, copy=False)


def checkerboard(height: int, width: int, cell: int = 16) -> np.ndarray:
    """``[H, W, 1]`` float32 grey checkerboard (0.35 / 0.55) for showing transparency."""
    yy = (np.arange(height) // cell)[:, None]
    xx = (np.arange(width) // cell)[None, :]
    return np.where((yy + xx) % 2 == 0, np.float32(0.55), np.float32(0.35))[..., None].astype(np.float32)


def overlay_layers(spatial: np.ndarray, temporal: np.ndarray | None, active: np.ndarray) -> dict[str, np.ndarray]:
    """The overlay's three disjoint ``[H, W]`` bool layers: ``active``, ``reused``, ``changed``.

    Args:
        spatial: band of the prior (``FrameResult.spatial``).
        temporal: changed pixels, or None without history (then nothing is reused).
        active: pixels refined at full resolution.
    """
    reused = spatial & ~active
    changed = (temporal & ~spatial) if temporal is not None else np.zeros_like(active)
    return {"active": active, "reused": reused, "changed": changed}


def tint(rgb: np.ndarray, layers: dict[str, np.ndarray]) -> np.ndarray:
    """``rgb`` ``[H, W, 3]`` float32 with each overlay layer mixed towards its colour (a new array)."""
    out = np.array(rgb, dtype=np.float32, copy=True)
    for name, mask in layers.items():
        if not mask.any():
            continue
        colour, opacity = OVERLAY_TINTS[name]
        out[mask] = out[mask] * (1.0 - opacity) + np.asarray(colour, np.float32) * opacity
    return out


def compose(mode: str, plate_rgb: np.ndarray, alpha: np.ndarray | None, result: Any = None) -> np.ndarray:
    """One view as ``[H, W, 3]`` float32 display sRGB in [0, 1].

    Args:
        mode: one of :data:`VIEW_MODES` (``prior`` is ``alpha`` of the prior; the caller passes it).
        plate_rgb: ``[H, W, 3]`` float32 display sRGB.
        alpha: ``[H, W]`` float32 matte in [0, 1] (refined or prior), or None before a result.
        result: the :class:`~sparsemat.engine.FrameResult` (overlay mode needs its maps).
    """
    if mode == "plate" or alpha is None:
        return plate_rgb
    if mode in ("alpha", "prior"):
        return np.repeat(alpha[..., None], 3, axis=2)
    if mode == "rgba":
        a = alpha[..., None]
        return plate_rgb * a + checkerboard(*alpha.shape) * (1.0 - a)
    if mode == "overlay":
        if result is None:
            return plate_rgb
        return tint(plate_rgb, overlay_layers(result.spatial, result.temporal, result.active))
    raise ValueError(f"unknown view mode {mode!r}; use one of {', '.join(VIEW_MODES)}")


def wipe(left: np.ndarray, right: np.ndarray, position: float) -> np.ndarray:
    """``left`` for columns before ``position`` (0-1 of the width), ``right`` after it."""
    split = int(round(np.clip(position, 0.0, 1.0) * left.shape[1]))
    out = np.array(right, copy=True)
    out[:, :split] = left[:, :split]
    return out


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] → contiguous uint8 (rounded, clipped)."""
    scaled = np.multiply(rgb, np.float32(255.0), dtype=np.float32)
    scaled += np.float32(0.5)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return np.ascontiguousarray(scaled.astype(np.uint8))


def to_qimage(rgb8: np.ndarray) -> QImage:
    """``[H, W, 3]`` uint8 → an owning :class:`QImage` (Format_RGB888)."""
    rgb8 = np.ascontiguousarray(rgb8)
    h, w = rgb8.shape[:2]
    return QImage(rgb8.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def qimage_to_array(image: QImage) -> np.ndarray:
    """A :class:`QImage` → ``[H, W, 3]`` uint8 RGB (for tests and screenshots)."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


class ImageView(QWidget):
    """Shows one image with zoom (wheel, about the cursor), pan (drag) and an optional wipe line.

    Keys: ``F`` fit, ``1`` (or ``H``) 1:1 pixels, ``+``/``-`` zoom. With the wipe on, dragging near
    the wipe line moves it. ``wipeMoved(float)`` reports the new position (0-1 of the width).
    """

    wipeMoved = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 200)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(False)
        self._image: QImage | None = None
        self.zoom = 1.0
        self.pixel_aspect = 1.0  # image pixel width / height: a 2x anamorphic plate is shown desqueezed
        self.offset = QPointF(0.0, 0.0)  # widget position of image pixel (0, 0)
        self.wipe_on = False
        self.wipe_position = 0.5
        self._drag: str | None = None
        self._last = QPointF()
        self._fitted = False

    # ------------------------------------------------------------------ image and view
    def set_image(self, image: QImage) -> None:
        """Show ``image``; the first image (or one of a new size) is fitted to the widget."""
        new_size = self._image is None or image.size() != self._image.size()
        self._image = image
        if new_size and not self._fitted:
            self.fit()
        self.update()

    def set_pixel_aspect(self, aspect: float) -> None:
        """Show image pixels ``aspect`` times as wide as high (the plate's pixel aspect), refitting on a change."""
        if aspect != self.pixel_aspect:
            self.pixel_aspect = float(aspect)
            if self._image is not None:
                self.fit()

    def image(self) -> QImage | None:
        """The image shown (full resolution, before zoom)."""
        return self._image

    def fit(self) -> None:
        """Zoom so the whole image fits, centred."""
        if self._image is None or self._image.isNull():
            return
        iw, ih = self._image.width() * self.pixel_aspect, self._image.height()
        self.zoom = max(ZOOM_MIN, min(self.width() / iw, self.height() / ih))
        self.offset = QPointF((self.width() - iw * self.zoom) / 2, (self.height() - ih * self.zoom) / 2)
        self._fitted = True
        self.update()

    def one_to_one(self, anchor: QPointF | None = None) -> None:
        """Zoom to 1 image pixel = 1 screen pixel about ``anchor`` (default: the widget centre)."""
        self.set_zoom(1.0, anchor)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Set the zoom keeping the image point under ``anchor`` (widget coordinates) in place."""
        zoom = float(np.clip(zoom, ZOOM_MIN, ZOOM_MAX))
        a = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        img_pt = self.to_image(a)
        self.zoom = zoom
        self.offset = a - QPointF(img_pt.x() * zoom * self.pixel_aspect, img_pt.y() * zoom)
        self._fitted = True
        self.update()

    def set_offset(self, x: float, y: float) -> None:
        """Place image pixel (0, 0) at widget position (x, y)."""
        self.offset = QPointF(x, y)
        self._fitted = True
        self.update()

    def to_image(self, pos: QPointF) -> QPointF:
        """Widget coordinates → image pixel coordinates."""
        d = pos - self.offset
        return QPointF(d.x() / (self.zoom * self.pixel_aspect), d.y() / self.zoom)

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        """Draw the image through the view transform, pixelated when magnified."""
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(38, 38, 38))
        if self._image is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1.0)
            target = QRectF(self.offset.x(), self.offset.y(), self._image.width() * self.zoom * self.pixel_aspect,
                            self._image.height() * self.zoom)
            p.drawImage(target, self._image)
            if self.wipe_on:
                x = self.offset.x() + self.wipe_position * target.width()
                p.setPen(QPen(QColor(255, 255, 255), 1))
                p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
                p.drawText(QPointF(x - 48, 16), "prior")
                p.drawText(QPointF(x + 6, 16), "refined")
        p.end()

    # ------------------------------------------------------------------ interaction
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        """Zoom by √2 per wheel step about the cursor."""
        steps = event.angleDelta().y() / 120.0
        self.set_zoom(self.zoom * (2 ** (0.5 * steps)), event.position())

    def _near_wipe(self, pos: QPointF) -> bool:
        if not self.wipe_on or self._image is None:
            return False
        x = self.offset.x() + self.wipe_position * self._image.width() * self.zoom * self.pixel_aspect
        return abs(pos.x() - x) < 8

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Start a pan, or a wipe drag near the wipe line."""
        self._drag = "wipe" if self._near_wipe(event.position()) else "pan"
        self._last = event.position()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Pan or move the wipe line."""
        pos = event.position()
        if self._drag == "pan":
            self.offset += pos - self._last
            self._fitted = True
            self.update()
        elif self._drag == "wipe" and self._image is not None:
            self.wipe_position = float(np.clip(self.to_image(pos).x() / self._image.width(), 0.0, 1.0))
            self.wipeMoved.emit(self.wipe_position)
        self._last = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """End a drag."""
        self._drag = None

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802
        """F fit, 1/H 1:1, +/- zoom."""
        key = event.key()
        if key == Qt.Key.Key_F:
            self.fit()
        elif key in (Qt.Key.Key_1, Qt.Key.Key_H):
            self.one_to_one()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.set_zoom(self.zoom * 2)
        elif key == Qt.Key.Key_Minus:
            self.set_zoom(self.zoom / 2)
        else:
            super().keyPressEvent(event)
