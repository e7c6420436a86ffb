"""The soft-edge guard discounting region texture, measured without an engine change (docs/experiments.md, "Fourteenth
session"; not adopted).

Since the thirteenth session the engine's guard keeps full refinement at a site whose 5 × 5 plate contrast ``c₅``
reaches 0.1 (``H``: weight ``max(clip(slope / 0.1), clip(c₅ / 0.1))``). Two variants discount texture that is not
evidence of fine detail at the edge:

* ``L``: ``clip((c₅ − c_bg) / 0.1)``, ``c_bg`` the mean ``c₅`` of clear-background pixels (upsampled prior < 0.02)
  within a 257 × 257 window (on a grid of 4-px cells; 0 where the window holds < 2 % of them);
* ``M``: ``clip((c₅ − max(c_bg, c_fg)) / 0.1)``, ``c_fg`` the same over solid-foreground pixels (prior > 0.98);
* ``plain``: the slope gate alone (the twelfth session's guard).

``run`` reads a capture of :mod:`confidence_gates` (``capture``) and writes one JSON row per plate, kind and method
(``prior``, ``guided``, ``H`` and the chosen variants) with unknown-region MAD / Grad; about 80 s per 2560×1440
plate for four methods on one core (split a set with ``--first``/``--plates``). ``summary`` prints per-kind means,
the set's own target line (0.75 × prior, capped by guided) and the target kinds each row meets
(``two_pass.summary``).

Usage::

    python tools/confidence_gates.py capture --seed 20261207 --plates 16 --out runs/f25b
    python tools/texture_guard.py run --data runs/f25b --first 0 --plates 8 --methods M --out runs/m_0.json
    python tools/texture_guard.py run --data runs/f25b --first 8 --plates 8 --methods M --out runs/m_8.json
    python tools/texture_guard.py summary runs/m_0.json runs/m_8.json
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
from sparsemat.evaluation.metrics import evaluate
from sparsemat.evaluation.validation import ACCEPT_KINDS, baseline_methods
from sparsemat.train.losses import local_contrast

sys.path.insert(0, str(Path(__file__).resolve().parent))
import confidence_gates as cg  # noqa: E402
from two_pass import summary  # noqa: E402

TAU = 0.1  # the engine's soft_edge_guard default
CONTRAST = 0.1  # the engine's STRUCTURE_CONTRAST
RADIUS = 128  # window half side, full-resolution px
CELL = 4
REGION_ALPHA = 0.02
MIN_SHARE = 0.02
VARIANTS = ("L", "M", "plain")


def region_texture(contrast: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean of ``contrast`` ``[H, W]`` over the pixels where ``region`` is set, in the cell-aligned window around each
    pixel; 0 where the window holds less than ``MIN_SHARE`` of the region."""
    h, w = contrast.shape
    num = F.avg_pool2d((contrast * region)[None, None], CELL, ceil_mode=True)
    den = F.avg_pool2d(region[None, None], CELL, ceil_mode=True)
    k = RADIUS // CELL
    num = F.avg_pool2d(num, 2 * k + 1, 1, k, count_include_pad=False)
    den = F.avg_pool2d(den, 2 * k + 1, 1, k, count_include_pad=False)
    t = torch.where(den > MIN_SHARE, num / den.clamp_min(1e-6), torch.zeros_like(num))
    return F.interpolate(t, scale_factor=CELL, mode="nearest")[0, 0, :h, :w]


def run(data: Path, first: int, plates: int, methods: list[str], out: Path) -> None:
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for i in range(first, first + plates):
        p = np.load(data / f"plate{i}.npz")
        gt, rgb = p["alpha"], p["rgb"].astype(np.float32)
        h, w = gt.shape
        c5 = local_contrast(torch.from_numpy(rgb).permute(2, 0, 1)[None], 5)[0, 0]
        for kind in ACCEPT_KINDS:
            d = dict(np.load(data / f"p{i}_{kind}.npz"))
            f = cg.site_features(d, (h, w), c5)
            up = F.interpolate(torch.from_numpy(d["matte"])[None, None].float(), size=(h, w), mode="bilinear",
                               align_corners=False)[0, 0]
            co = torch.from_numpy(d["coords"]).long()
            slope = (f["slope"] / TAU).clamp(0, 1)
            c_bg = region_texture(c5, (up < REGION_ALPHA).float())
            structure = {"H": f["hrcon"], "L": (c5 - c_bg)[co[:, 0], co[:, 1]].clamp(0, 1)}
            if "M" in methods:
                c_fg = region_texture(c5, (up > 1.0 - REGION_ALPHA).float())
                structure["M"] = (c5 - torch.maximum(c_bg, c_fg))[co[:, 0], co[:, 1]].clamp(0, 1)
            preds = dict(baseline_methods(rgb, d["matte"]))
            for name in ["H", *methods]:
                weight = slope if name == "plain" else torch.maximum(slope, (structure[name] / CONTRAST).clamp(0, 1))
                pred = d["out"].copy()
                with torch.no_grad():
                    pred[co[:, 0], co[:, 1]] = cg.blend(weight, f["la"], f["lb"]).numpy()
                preds[name] = pred
            for name, pred in preds.items():
                rows.append({"plate": i, "kind": kind, "method": name, **evaluate(pred, gt, 15, ("mad", "grad"))})
        print(f"plate {i} done ({time.time() - t0:.0f} s)", flush=True)
        out.write_text(json.dumps(rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, required=True, help="a confidence_gates.py capture folder")
    r.add_argument("--first", type=int, default=0)
    r.add_argument("--plates", type=int, default=8)
    r.add_argument("--methods", default="L,M", help=f"comma-separated, of {','.join(VARIANTS)} [%(default)s]")
    r.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("summary")
    s.add_argument("files", type=Path, nargs="+")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "run":
        methods = [m for m in a.methods.split(",") if m]
        bad = [m for m in methods if m not in VARIANTS]
        if bad:
            raise SystemExit(f"unknown method(s) {bad}; choose from {', '.join(VARIANTS)}")
        run(a.data, a.first, a.plates, methods, a.out)
    else:
        summary(a.files)


if __name__ == "__main__":
    main()
