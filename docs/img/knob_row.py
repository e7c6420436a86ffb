"""Shared by the knob figures (refine_strength.py, soft_edge_guard.py): render one plate at several values of an
engine knob and write one row — plate | ground truth | the matte at each value — cropped at 1:1."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
from sparsemat import Settings
from sparsemat.engine import FrameInput, Session
from sparsemat.evaluation.metrics import evaluate


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def knob_row(rgb: np.ndarray, alpha: np.ndarray, matte: np.ndarray, refiner: Any, knob: str,
             values: Sequence[float], crop: tuple[int, int, int, int], path: Path) -> None:
    """Render ``rgb`` (``[H, W, 3]`` sRGB) with the low-res ``matte`` as the prior once per knob value, print each
    matte's unknown-region MAD (×1e3) and Grad (/1e3) against ``alpha``, and write the row to ``path`` (8-bit PNG).

    ``crop`` is ``(y, x, height, width)`` in plate pixels. Every other knob is at the engine default, except the
    soft-edge guard, which is off unless it is the knob shown (the figures were made before its default became 0.1).
    """
    y, x, h, w = crop
    tiles = [_rgb(rgb[y:y + h, x:x + w]), _rgb(alpha[y:y + h, x:x + w])]
    for v in values:
        knobs: dict[str, Any] = {"soft_edge_guard": 0.0, knob: v}
        session = Session(Settings(prior="input", temporal=False, device="cpu", **knobs), refiner=refiner)
        out = session.process(0, FrameInput(rgb=rgb, matte=matte)).alpha
        m = evaluate(out, alpha, 15, ("mad", "grad"))
        print(f"{knob} {v:g}: MAD {m['mad_unk']:.2f}  Grad {m['grad_unk']:.2f}")
        tiles.append(_rgb(out[y:y + h, x:x + w]))
    gap = np.ones((tiles[0].shape[0], 6, 3), np.float32)
    row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
    spec = oiio.ImageSpec(row.shape[1], row.shape[0], 3, oiio.UINT8)
    img = oiio.ImageOutput.create(str(path))
    img.open(str(path), spec)
    img.write_image(np.ascontiguousarray(row, dtype=np.float32))
    img.close()
    print(f"wrote {path}")
