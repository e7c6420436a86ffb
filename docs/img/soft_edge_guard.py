"""Make docs/img/soft_edge_guard.png: the ``soft_edge_guard`` knob on a smoke plume next to a hairy edge.

Usage: ``python docs/img/soft_edge_guard.py [--out docs/img] [--guards 0,0.1,0.2]``

The plate is validation plate 4 of the project's yardstick (2560×1440, seed 271828: a hairy star with a faint smoke
plume beside it, where the default ``lite_cs2`` lifts and hardens the plume) with its ×4 prior (``down4``). The
engine renders it once per guard value with the default model; the script prints the plate's unknown-region MAD
(×1e3) and Grad (/1e3) per value and writes one row: plate | ground truth | the matte at each value, cropped to the
plume and the star's left edge at 1:1. Needs the shared photo folder (the yardstick draws its textures from it).
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
from sparsemat.evaluation.validation import VALIDATION_SEED, degraded_matte
from sparsemat.train.datasets import training_photos
from sparsemat.train.synth import make_sample, torch_threads
from sparsemat.train.trainer import TrainConfig

PLATE = 4
CROP = (600, 400, 420, 520)  # y, x, height, width: the plume and the star's left edge (1:1)


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img", help="output folder [%(default)s]")
    ap.add_argument("--guards", default="0,0.1,0.2", help="soft_edge_guard values [%(default)s]")
    args = ap.parse_args()
    guards = [float(v) for v in args.guards.split(",")]
    photos = training_photos(None, TrainConfig().exclude_photos)
    with torch_threads(1):  # as validation_plates draws them
        plate = make_sample(np.random.default_rng([VALIDATION_SEED, PLATE]), (1440, 2560), photos or None)
    matte = degraded_matte(plate.alpha, PLATE, "down4")
    refiner = build_shm()
    y, x, h, w = CROP
    tiles = [_rgb(plate.rgb[y:y + h, x:x + w]), _rgb(plate.alpha[y:y + h, x:x + w])]
    for g in guards:
        session = Session(Settings(prior="input", temporal=False, device="cpu", soft_edge_guard=g), refiner=refiner)
        alpha = session.process(0, FrameInput(rgb=plate.rgb, matte=matte)).alpha
        m = evaluate(alpha, plate.alpha, 15, ("mad", "grad"))
        print(f"soft_edge_guard {g:g}: MAD {m['mad_unk']:.2f}  Grad {m['grad_unk']:.2f}")
        tiles.append(_rgb(alpha[y:y + h, x:x + w]))
    gap = np.ones((tiles[0].shape[0], 6, 3), np.float32)
    row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)
    path = Path(args.out) / "soft_edge_guard.png"
    spec = oiio.ImageSpec(row.shape[1], row.shape[0], 3, oiio.UINT8)
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(np.ascontiguousarray(row, dtype=np.float32))
    out.close()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
