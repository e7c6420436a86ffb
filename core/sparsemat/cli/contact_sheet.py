"""A PNG contact sheet for a person to look at: whole-frame panels plus 1:1 crops on hair.

Row 1 (downscaled): plate, refined alpha, sparsity overlay (refined pixels red, the spatial band
that reused the previous frame's matte blue, over the dimmed plate). Row 2 (1:1, not resampled):
the same crop of plate, ground truth, prior and refined alpha, where fine strands are densest.
Panels are placed with matplotlib's ``figimage`` so crops keep their pixels exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Panel:
    """One labelled image of the sheet: ``pixels`` ``[h, w, 3]`` float32 display sRGB in [0, 1]."""

    label: str
    pixels: np.ndarray


def _grey(alpha: np.ndarray) -> np.ndarray:
    """``[H, W]`` alpha → ``[H, W, 3]`` grey."""
    return np.repeat(np.clip(alpha, 0.0, 1.0)[..., None], 3, axis=2).astype(np.float32)


def _shrink(img: np.ndarray, width: int) -> np.ndarray:
    """Box-average ``img`` ``[H, W, C]`` down by an integer factor so it is at most ``width`` wide."""
    factor = max(1, int(np.ceil(img.shape[1] / width)))
    h, w = img.shape[0] // factor * factor, img.shape[1] // factor * factor
    cropped = img[:h, :w].astype(np.float32)
    return cropped.reshape(h // factor, factor, w // factor, factor, -1).mean(axis=(1, 3))


def sparsity_overlay(rgb: np.ndarray, active: np.ndarray, spatial: np.ndarray | None = None) -> np.ndarray:
    """Dimmed plate with refined pixels red and band pixels reused from the previous frame blue.

    Args:
        rgb: ``[H, W, 3]`` float32 display sRGB in [0, 1].
        active: ``[H, W]`` bool (or 0/1 float), pixels the SHM refined.
        spatial: ``[H, W]`` bool band of the prior, or None.
    """
    out = 0.35 * rgb.astype(np.float32)
    act = np.asarray(active) > 0.5
    if spatial is not None:
        reused = (np.asarray(spatial) > 0.5) & ~act
        out[reused] = 0.5 * out[reused] + np.array([0.1, 0.3, 0.9], np.float32) * 0.5
    out[act] = 0.4 * out[act] + np.array([1.0, 0.15, 0.1], np.float32) * 0.6
    return out


def hair_crop(gt: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the ``size``² crop with the most fine (0.05 < α < 0.95) ground-truth pixels."""
    h, w = gt.shape
    size = min(size, h, w)
    cell = max(8, size // 4)
    soft = ((gt > 0.05) & (gt < 0.95)).astype(np.float32)
    gh, gw = h // cell, w // cell
    grid = soft[: gh * cell, : gw * cell].reshape(gh, cell, gw, cell).sum(axis=(1, 3))
    k = max(1, size // cell)
    best, pos = -1.0, (0, 0)
    for gy in range(max(1, gh - k + 1)):
        for gx in range(max(1, gw - k + 1)):
            score = float(grid[gy:gy + k, gx:gx + k].sum())
            if score > best:
                best, pos = score, (gy * cell, gx * cell)
    y, x = pos
    return min(y, h - size), min(x, w - size)


def save_contact_sheet(path: str, title: str, overview: list[Panel], crops: list[Panel],
                       panel_width: int = 640) -> str:
    """Write the sheet as PNG; return ``path``.

    Args:
        path: destination ``.png``.
        title: one line printed at the top.
        overview: whole-frame panels, downscaled to at most ``panel_width`` wide.
        crops: 1:1 panels (shown unresampled).
        panel_width: width of the downscaled panels in pixels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pad, label_h, title_h = 12, 22, 30
    small = [Panel(p.label, _shrink(p.pixels, panel_width)) for p in overview]
    row1_h = max(p.pixels.shape[0] for p in small)
    row2_h = max((p.pixels.shape[0] for p in crops), default=0)
    width = max(sum(p.pixels.shape[1] + pad for p in row) + pad for row in (small, crops) if row)
    height = title_h + label_h + row1_h + pad + (label_h + row2_h + pad if crops else 0)
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=(0.12, 0.12, 0.12))
    fig.text(pad / width, 1 - 20 / height, title, color="white", fontsize=11, family="monospace")
    top = title_h  # pixels from the top of the sheet
    for row, row_h in ((small, row1_h), (crops, row2_h)):
        x = pad
        for p in row:
            ph, pw = p.pixels.shape[:2]
            fig.text(x / width, 1 - (top + 16) / height, p.label, color="white", fontsize=9)
            y0 = height - (top + label_h + ph)  # figimage measures from the bottom
            fig.figimage(np.clip(p.pixels, 0.0, 1.0), xo=x, yo=y0, origin="upper")
            x += pw + pad
        top += label_h + row_h + pad
    fig.savefig(path, dpi=dpi, facecolor=fig.get_facecolor())
    plt.close(fig)
    return path


__all__ = ["Panel", "hair_crop", "save_contact_sheet", "sparsity_overlay"]
