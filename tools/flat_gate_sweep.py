"""Choose the flat-region term's window and contrast on training-distribution validation crops.

Usage: python tools/flat_gate_sweep.py [WEIGHTS] [--seed 21] [--crops 48]

Runs an SHM (default: the shipped ``shm_lite.pt``) on validation crops drawn exactly like phase 3's training
crops (192 px from 576–1,920 px synthetic composites, the nine phase-3 degradations) but from a seed no training
run uses, then blends it back towards its base alpha where the plate is flat,
``base + g·(α_SHM − base)`` with ``g = clip(local_contrast(rgb, window) / contrast, 0, 1)``, and prints the
unknown-region MAD (×1e3) / Grad (/1e3) of each (window, contrast) next to the SHM, its base and the prior.
``--scales`` adds residual temperatures ``α = σ(s·head + logit(base))``, i.e. the engine's ``refine_strength``
knob (:func:`sparsemat.engine.refine.temper_refinement`).

This is how ``TrainConfig.flat_window`` / ``flat_contrast`` were picked (docs/models.md); the validation
yardstick's plates are never looked at.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sparsemat.builders import build_shm
from sparsemat.engine.refine import temper_refinement
from sparsemat.train import losses, trainer

KINDS = ("down4", "down8", "blur", "dilate", "erode", "noise", "down8_blur", "combo", "holes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="?", default=None, help="SHM checkpoint ({config, state_dict}) [shipped lite]")
    ap.add_argument("--seed", type=int, default=21, help="validation seed (training runs used 0–14) [%(default)s]")
    ap.add_argument("--crops", type=int, default=48, help="validation crops [%(default)s]")
    ap.add_argument("--windows", default="5,9,15", help="odd windows in px [%(default)s]")
    ap.add_argument("--contrasts", default="0.05,0.1,0.2,0.4", help="full-structure contrasts [%(default)s]")
    ap.add_argument("--scales", default="", help="residual temperatures s to add, e.g. 0.75,0.5,0.25 [none]")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = build_shm(args.weights or "lite").eval()
    cfg = trainer.TrainConfig(config="lite", crop=192, sample_scale=(3.0, 10.0),
                              crops_per_sample=12, seed=args.seed, val_size=args.crops, workers=0, kinds=KINDS)
    task = trainer.ShmTask(cfg)
    grid = [(int(w), float(c)) for w in args.windows.split(",") for c in args.contrasts.split(",")]
    rows: dict[str, list[tuple[float, float]]] = {}
    scales = [float(v) for v in args.scales.split(",") if v]
    with torch.no_grad():
        for batch in task.val_set():
            out, band, base = task.forward(model, batch)
            prior = batch["prior_hr"]
            alpha = out.alpha.features
            preds = {"shm": alpha, "base": base, "prior": prior}
            for sc in scales:
                preds[f"residual s={sc}"] = temper_refinement(alpha, base, sc)
            for w, c in grid:
                g = (losses.local_contrast(batch["rgb"], w) / c).clamp(0.0, 1.0)
                preds[f"gate w={w} c={c}"] = base + g * (alpha - base)
            for name, p in preds.items():
                blend = (band * p + (1.0 - band) * prior).numpy()
                for i in range(blend.shape[0]):
                    m = trainer.unknown_metrics(blend[i, 0], batch["alpha"][i, 0].numpy())
                    rows.setdefault(name, []).append(m)
    print(f"{args.weights or 'shipped lite'}: {args.crops} crops, seed {args.seed}; unknown-region MAD x1e3 / Grad /1e3")
    for name, r in rows.items():
        mad, grad = np.asarray(r).mean(0)
        print(f"  {name:22s} {mad:7.2f} {grad:7.3f}")


if __name__ == "__main__":
    main()
