"""Make docs/img/refine_strength.png: the ``refine_strength`` knob on a wide, defocused edge.

Usage: ``python docs/img/refine_strength.py [--out docs/img] [--strengths 1,0.5,0.25,0]``

The plate is validation plate 0 of the project's yardstick (2560×1440, seed 271828: a large defocused body whose
magenta stripes match the magenta background, the case where the shipped ``lite`` hardens a genuinely soft edge)
with its ×4 prior (``down4``). The engine renders it once per strength with the shipped weights; the script prints
the plate's unknown-region MAD (×1e3) and Grad (/1e3) per strength and writes one row: plate | ground truth |
the matte at each strength, cropped to the left edge at 1:1. Needs the shared photo folder
(the yardstick draws its textures from it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
from sparsemat import Settings
from sparsemat.builders import build_shm
from sparsemat.engine import FrameInput, Session
from sparsemat.evaluation.metrics import evaluate
from sparsemat.evaluation.validation import degraded_matte, validation_plates
from sparsemat.train.datasets import training_photos
from sparsemat.train.trainer import TrainConfig

CROP = (860, 1330, 330, 270)  # y, x, height, width: the left edge of the defocused body (1:1)


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img", help="output folder [%(default)s]")
    ap.add_argument("--strengths", default="1,0.5,0.25,0", help="refine_strength values [%(default)s]")
    args = ap.parse_args()
    strengths = [float(v) for v in args.strengths.split(",")]
    photos = training_photos(None, TrainConfig().exclude_photos)
    plate = validation_plates(1, (1440, 2560), photos or None)[0]
    matte = degraded_matte(plate.alpha, 0, "down4")
    refiner = build_shm("lite")
    y, x, h, w = CROP
    tiles = [_rgb(plate.rgb[y:y + h, x:x + w]), _rgb(plate.alpha[y:y + h, x:x + w])]
    for s in strengths:
        session = Session(Settings(prior="input", temporal=False, device="cpu", refine_strength=s), refiner=refiner)
        alpha = session.process(0, FrameInput(rgb=plate.rgb, matte=matte)).alpha
        m = evaluate(alpha, plate.alpha, 15, ("mad", "grad"))
        print(f"refine_strength {s:g}: MAD {m['mad_unk']:.2f}  Grad {m['grad_unk']:.2f}")
        tiles.append(_rgb(alpha[y:y + h, x:x + w]))
    gap = np.ones((tiles[0].shape[0], 6, 3), np.float32)
    row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
    path = Path(args.out) / "refine_strength.png"
    spec = oiio.ImageSpec(row.shape[1], row.shape[0], 3, oiio.UINT8)
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(np.ascontiguousarray(row, dtype=np.float32))
    out.close()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
