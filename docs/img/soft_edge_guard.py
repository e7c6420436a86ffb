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

from knob_row import knob_row
from sparsemat.builders import build_shm
from sparsemat.evaluation.validation import degraded_matte, validation_plate
from sparsemat.train.datasets import training_photos
from sparsemat.train.trainer import TrainConfig

PLATE = 4
CROP = (600, 400, 420, 520)  # y, x, height, width: the plume and the star's left edge (1:1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img", help="output folder [%(default)s]")
    ap.add_argument("--guards", default="0,0.1,0.2", help="soft_edge_guard values [%(default)s]")
    args = ap.parse_args()
    guards = [float(v) for v in args.guards.split(",")]
    photos = training_photos(None, TrainConfig().exclude_photos)
    plate = validation_plate(PLATE, (1440, 2560), photos or None)
    matte = degraded_matte(plate.alpha, PLATE, "down4")
    refiner = build_shm()
    knob_row(plate.rgb, plate.alpha, matte, refiner, "soft_edge_guard", guards, CROP,
             Path(args.out) / "soft_edge_guard.png")


if __name__ == "__main__":
    main()
