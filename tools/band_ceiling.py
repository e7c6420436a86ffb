"""How far any refiner limited to the engine's edge band could go (docs/experiments.md, "Eleventh session").

For validation-style plates (:func:`sparsemat.evaluation.validation.validation_plate`) and each degradation kind,
pastes the ground truth into the band ``dilate_k(0.01 < α↑ < 0.99)`` of the bilinearly upsampled prior, keeps the
prior elsewhere, and prints the unknown-region MAD (×1e3) of that matte next to the prior's, with the share of the
unknown region the band covers, for kernel sizes 15 / 31 / 63. No network runs; ~10 s per 2560×1440 plate.

Usage::

    python tools/band_ceiling.py --seed 314159 --plates 8 --kinds down4,erode,combo,dilate
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sparsemat.engine.sparsity import spatial_band
from sparsemat.evaluation.guided_filter import bilinear_upsample
from sparsemat.evaluation.metrics import mad, unknown_mask
from sparsemat.evaluation.validation import ACCEPT_KINDS, degraded_matte, validation_plate
from sparsemat.train.datasets import training_photos
from sparsemat.train.trainer import TrainConfig

KERNELS = (15, 31, 63)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--plates", type=int, default=8)
    p.add_argument("--kinds", default=",".join(ACCEPT_KINDS))
    a = p.parse_args()
    kinds = [k for k in a.kinds.split(",") if k]
    photos = training_photos(None, TrainConfig().exclude_photos)
    acc: dict[tuple[str, str], list[float]] = {}
    for i in range(a.plates):
        smp = validation_plate(i, (1440, 2560), photos or None, a.seed)
        gt = smp.alpha
        unk = unknown_mask(gt, 15)
        for kind in kinds:
            prior = np.clip(bilinear_upsample(degraded_matte(gt, i, kind, seed=a.seed), gt.shape), 0, 1)
            acc.setdefault((kind, "prior"), []).append(mad(prior, gt, unk))
            for k in KERNELS:
                band = spatial_band(torch.from_numpy(prior), k).numpy()
                acc.setdefault((kind, f"ceiling k{k}"), []).append(mad(np.where(band, gt, prior), gt, unk))
                acc.setdefault((kind, f"cover k{k}"), []).append(float((band & unk).sum() / max(unk.sum(), 1)))
        print(f"plate {i + 1}/{a.plates} done", flush=True)
    keys = ["prior"] + [f"ceiling k{k}" for k in KERNELS] + [f"cover k{k}" for k in KERNELS]
    print("| kind | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for kind in kinds:
        print(f"| {kind} | " + " | ".join(f"{np.mean(acc[(kind, key)]):.2f}" for key in keys) + " |")


if __name__ == "__main__":
    main()
