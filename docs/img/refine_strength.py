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

from knob_row import knob_row
from sparsemat.builders import build_shm
from sparsemat.evaluation.validation import degraded_matte, validation_plates
from sparsemat.train.datasets import training_photos
from sparsemat.train.trainer import TrainConfig

CROP = (860, 1330, 330, 270)  # y, x, height, width: the left edge of the defocused body (1:1)


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
    knob_row(plate.rgb, plate.alpha, matte, refiner, "refine_strength", strengths, CROP,
             Path(args.out) / "refine_strength.png")


if __name__ == "__main__":
    main()
