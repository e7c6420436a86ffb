"""Draw SparseMat's toolbar icons with Qt's painter (offscreen): SparseMat.png (26 px) and SparseMat@2x.png (52 px).

    python icons/make_icons.py

The icon: a dark rounded tile, a soft white matte shape, and a ring of small dots along its edge
(the sparse band that gets refined). Drawn at each size, not scaled, so the 26 px icon stays crisp.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {"SparseMat.png": 26, "SparseMat@2x.png": 52}


def draw(size: int) -> object:
    from PySide6 import QtCore, QtGui

    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(image)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    s = size / 26.0
    tile = QtCore.QRectF(0.5 * s, 0.5 * s, 25 * s, 25 * s)
    p.setPen(QtCore.Qt.PenStyle.NoPen)
    p.setBrush(QtGui.QColor(58, 40, 92))
    p.drawRoundedRect(tile, 5 * s, 5 * s)
    centre = QtCore.QPointF(13 * s, 13.5 * s)
    radius = 7.0 * s
    glow = QtGui.QRadialGradient(centre, radius * 1.35)
    glow.setColorAt(0.0, QtGui.QColor(255, 255, 255))
    glow.setColorAt(0.72, QtGui.QColor(255, 255, 255))
    glow.setColorAt(1.0, QtGui.QColor(255, 255, 255, 0))
    p.setBrush(glow)
    p.drawEllipse(centre, radius * 1.35, radius * 1.35)
    p.setBrush(QtGui.QColor(255, 170, 60))
    dots = 10 if size < 40 else 16
    for i in range(dots):
        a = 2 * math.pi * i / dots
        r = radius * 1.32
        p.drawEllipse(QtCore.QPointF(centre.x() + r * math.cos(a), centre.y() + r * math.sin(a)), 1.1 * s, 1.1 * s)
    p.end()
    return image


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6 import QtGui

    app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication(sys.argv[:1])
    for name, size in SIZES.items():
        path = HERE / name
        if not draw(size).save(str(path)):  # type: ignore[attr-defined]
            print(f"could not write {path}", file=sys.stderr)
            return 1
        print(f"wrote {path} ({size}x{size})")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
