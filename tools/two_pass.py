"""Two refine passes, measured without an engine knob (docs/experiments.md, "Thirteenth session"; not adopted).

A second pass runs the engine again with the first pass's full-resolution matte as its Matte input (its band then
comes from that matte's transition, its low-res prior, guided base and colour samples from its downsampling).
``J`` blends the second pass into the first by the first pass's soft-edge guard weight ``g₀`` (slope gate of the
original low-res prior, at least ``clip(5×5 plate contrast / 0.1)``): ``σ(g₀·logit α₂ + (1 − g₀)·logit α₁)``.

* ``run`` reads a capture of :mod:`confidence_gates` (``capture``: the engine's matte and per-site values with the
  guard off), rebuilds the first pass with the engine's guard (``score --guard 0.1 --guard-contrast 0.1``'s
  blend), runs the second pass through the real engine (default knobs) and writes one JSON row per plate, kind
  and method (``prior``, ``guided``, ``pass1``, ``pass2``, ``J``) with unknown-region MAD / Grad. About 70 s per
  2560×1440 plate on one core (200 s at 3840×2160); split a set over processes with ``--first``/``--plates``.
  ``--save DIR`` also writes each plate × kind's two mattes (float32) and ``g₀`` (float16) for blends scored
  offline (the fourteenth session's K family, docs/experiments.md).
* ``summary`` prints per-kind means, the set's own target line (0.75 × prior, capped by guided) and the target kinds
  each row meets.

Usage::

    python tools/confidence_gates.py capture --seed 20261204 --plates 16 --out runs/fresh
    python tools/two_pass.py run --data runs/fresh --seed 20261204 --first 0 --plates 8 --out runs/j_0.json
    python tools/two_pass.py run --data runs/fresh --seed 20261204 --first 8 --plates 8 --out runs/j_8.json
    python tools/two_pass.py summary runs/j_0.json runs/j_8.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sparsemat.engine.refine import temper_refinement
from sparsemat.engine.soft_ramp import STRUCTURE_CONTRAST, ramp_gate
from sparsemat.evaluation.metrics import evaluate
from sparsemat.evaluation.validation import ACCEPT_KINDS, TARGET_REDUCTION, baseline_methods, validation_plate
from sparsemat.train.losses import local_contrast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import confidence_gates as cg  # noqa: E402

GUARD = 0.1


def run(data: Path, seed: int, first: int, plates: int, out: Path, size: tuple[int, int], budget: int,
        save: Path | None = None) -> None:
    from sparsemat.builders import build_shm
    from sparsemat.engine import FrameInput, Session
    from sparsemat.settings import Settings
    from sparsemat.train.datasets import training_photos
    from sparsemat.train.trainer import TrainConfig

    photos = training_photos(None, TrainConfig().exclude_photos)
    session = Session(Settings(prior="input", temporal=False, device="cpu", soft_edge_guard=GUARD,
                               max_active_pixels=budget), refiner=build_shm("lite_cs2"))
    rows: list[dict[str, Any]] = []
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for i in range(first, first + plates):
        p = np.load(data / f"plate{i}.npz")
        gt = p["alpha"]
        smp = validation_plate(i, size, photos, seed)
        if np.abs(smp.alpha - gt).max() > 1e-6:
            raise SystemExit(f"{data}: plate {i} was not captured from seed {seed} at {size[1]}x{size[0]}")
        contrast = local_contrast(torch.from_numpy(p["rgb"].astype(np.float32)).permute(2, 0, 1)[None], 5)[0, 0]
        for kind in ACCEPT_KINDS:
            d = dict(np.load(data / f"p{i}_{kind}.npz"))
            f = cg.site_features(d, size, contrast)
            first_pass = d["out"].copy()
            with torch.no_grad():
                s = cg._guard_strength(f, GUARD, STRUCTURE_CONTRAST)
                first_pass[d["coords"][:, 0], d["coords"][:, 1]] = cg.blend(s, f["la"], f["lb"]).numpy()
            session.reset()
            res = session.process(0, FrameInput(rgb=smp.rgb, matte=first_pass))
            if res.stats.cascade_scales != [1.0]:
                raise SystemExit(f"plate {i} {kind}: the second pass went through the cascade; raise --budget")
            g0 = F.interpolate(ramp_gate(torch.from_numpy(d["matte"])[None, None], GUARD), size=size,
                               mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)
            g0 = torch.maximum(g0, (contrast / STRUCTURE_CONTRAST).clamp(0, 1))
            blended = temper_refinement(torch.from_numpy(res.alpha), torch.from_numpy(first_pass), g0).numpy()
            preds = {**baseline_methods(smp.rgb, d["matte"]), "pass1": first_pass, "pass2": res.alpha, "J": blended}
            if save is not None:
                np.savez(save / f"p{i}_{kind}.npz", pass1=first_pass.astype(np.float32),
                         pass2=res.alpha.astype(np.float32), g0=g0.numpy().astype(np.float16))
            for name, pred in preds.items():
                rows.append({"plate": i, "kind": kind, "method": name, **evaluate(pred, gt, 15, ("mad", "grad"))})
        print(f"plate {i} done ({time.time() - t0:.0f} s)", flush=True)
        out.write_text(json.dumps(rows))


def summary(files: list[Path]) -> None:
    """Per-kind means of every method in ``files`` (in order of appearance), after the set's target line."""
    rows = [r for f in files for r in json.loads(f.read_text())]
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m not in ("prior", "guided")]

    def means(method: str) -> dict[str, tuple[float, float]]:
        return {k: (float(np.mean([r["mad_unk"] for r in rows if r["method"] == method and r["kind"] == k])),
                    float(np.mean([r["grad_unk"] for r in rows if r["method"] == method and r["kind"] == k])))
                for k in ACCEPT_KINDS}

    prior, guided = means("prior"), means("guided")
    target = {k: (min((1 - TARGET_REDUCTION) * prior[k][0], guided[k][0]),
                  min((1 - TARGET_REDUCTION) * prior[k][1], guided[k][1])) for k in ACCEPT_KINDS}
    print(f"plates {len({r['plate'] for r in rows})}")
    print("| row | " + " | ".join(ACCEPT_KINDS) + " | mean | kinds met |")
    for label in ("prior", "guided", "target", *methods):
        m = target if label == "target" else means(label)
        met = "" if label in ("prior", "guided", "target") else ", ".join(
            k for k in ACCEPT_KINDS if m[k][0] < target[k][0] and m[k][1] < target[k][1]) or "none"
        cells = " | ".join(f"{a:.2f} / {g:.2f}" for a, g in m.values())
        mean = f"{np.mean([a for a, _ in m.values()]):.2f} / {np.mean([g for _, g in m.values()]):.2f}"
        print(f"| {label} | {cells} | {mean} | {met} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, required=True, help="a confidence_gates.py capture folder")
    r.add_argument("--seed", type=int, required=True, help="the capture's seed")
    r.add_argument("--first", type=int, default=0)
    r.add_argument("--plates", type=int, default=8)
    r.add_argument("--size", default="2560x1440", help="plate WxH [%(default)s]")
    r.add_argument("--budget", type=int, default=0, help="the engine's max_active_pixels (9000000 at 4K)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--save", type=Path, default=None,
                   help="also write each plate x kind's pass-1 and pass-2 mattes (float32) and g0 (float16) to this folder")
    s = sub.add_parser("summary")
    s.add_argument("files", type=Path, nargs="+")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "run":
        w, h = (int(v) for v in a.size.lower().split("x"))
        run(a.data, a.seed, a.first, a.plates, a.out, (h, w), a.budget, a.save)
    else:
        summary(a.files)


if __name__ == "__main__":
    main()
