"""What Temporal reuse saves and what it costs (docs/method.md §3, the reason it is off by default).

For generated sequences (:func:`sparsemat.train.synth.make_sequence`: the subject drifts, rocks and its strands sway;
the camera locked off or panning) with the bench's prior (down8, made as :mod:`sparsemat.bench.plates` makes it),
runs the engine with reuse off and on (engine defaults otherwise, keyframe interval 0) and prints, per sequence, whole-frame MAD (×1e3) and dtSSD of both runs against the
generated ground truth and the share of the refiner's multiply-accumulates that reuse saved. ``--split`` also prints,
per frame with history, the absolute error summed over the pixels reuse refined and over those it took from the
previous frame, for both runs. ``--margin M`` widens the change map by ``M`` px before it meets the band, so pixels
next to a change are refined with more of their neighbours (the margin's pixels are refined and written too).
About 1 min per 2K sequence of 6 frames on two cores.

Usage::

    python tools/temporal_reuse.py --seeds 11,12,13,14 --motion locked --frames 6
    python tools/temporal_reuse.py --seeds 3 --motion locked --frames 4 --margin 8 --split
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import sparsemat.engine.session as session_module
from sparsemat.bench.plates import PRIOR_KIND
from sparsemat.builders import build_shm
from sparsemat.engine import FrameInput, FrameResult, Session
from sparsemat.engine.sparsity import dilate, temporal_change
from sparsemat.evaluation.metrics import dtssd_sequence
from sparsemat.settings import DEFAULT_MODEL, Settings
from sparsemat.train import synth


def run(frames: list[Any], priors: list[np.ndarray], refiner: Any, temporal: bool, threshold: float
        ) -> list[FrameResult]:
    """Render the sequence in order with one session; returns each frame's result."""
    settings = Settings(prior="input", temporal=temporal, device="cpu", keyframe_interval=0, threshold=threshold)
    session = Session(settings, refiner=refiner)
    return [session.process(f, FrameInput(rgb=s.rgb, matte=p)) for f, (s, p) in enumerate(zip(frames, priors, strict=True))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="11,12,13,14", help="comma-separated sequence seeds")
    ap.add_argument("--motion", default="locked", choices=("locked", "moving"))
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--size", default="2048x1080", help="WIDTHxHEIGHT")
    ap.add_argument("--threshold", type=float, default=0.05, help="the Temporal threshold knob")
    ap.add_argument("--margin", type=int, default=0, help="px added around the change map (0: the engine as it is)")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--split", action="store_true", help="per-frame error on refined and on reused pixels")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.margin > 0:
        def widened(rgb: Any, prev: Any, threshold: float, kernel_size: int) -> Any:
            return dilate(temporal_change(rgb, prev, threshold, kernel_size), 2 * args.margin + 1)

        session_module.temporal_change = widened  # type: ignore[assignment]
    refiner = build_shm(args.model)
    photos = synth.load_photos()
    for seed in (int(s) for s in args.seeds.split(",")):
        seq = list(synth.make_sequence(seed, (height, width), args.frames, motion=args.motion,
                                       backgrounds=photos or None))
        priors = [synth.lowres_prior(synth.degrade_prior(s.alpha, seed * 1000 + f, kind=PRIOR_KIND))  # as the bench
                  for f, s in enumerate(seq)]
        gts = [s.alpha for s in seq]
        off = run(seq, priors, refiner, False, args.threshold)
        on = run(seq, priors, refiner, True, args.threshold)
        figures = {}
        for name, res in (("off", off), ("on", on)):
            preds = [r.alpha for r in res]
            figures[name] = (float(np.mean([np.abs(p - g).mean() for p, g in zip(preds, gts, strict=True)]) * 1e3),
                             float(dtssd_sequence(preds, gts)), sum(r.stats.shm_gmacs for r in res))
        (m0, d0, g0), (m1, d1, g1) = figures["off"], figures["on"]
        print(f"seed {seed} {args.motion}: MAD off {m0:.4f} on {m1:.4f} ({(m1 / m0 - 1) * 100:+.2f} %) | "
              f"dtSSD off {d0:.4f} on {d1:.4f} ({(d1 / d0 - 1) * 100:+.2f} %) | refiner work saved "
              f"{(1 - g1 / g0) * 100:.1f} %", flush=True)
        if args.split:
            for f in range(1, args.frames):
                r, g = on[f], gts[f]
                assert r.temporal is not None
                reused = r.spatial & ~r.temporal
                e_on, e_off = np.abs(r.alpha - g), np.abs(off[f].alpha - g)
                print(f"  frame {f}: refined {r.active.mean() * 100:.2f} % of the plate, error on {e_on[r.active].sum() / 1e3:.2f}"
                      f" off {e_off[r.active].sum() / 1e3:.2f} | reused {reused.mean() * 100:.2f} %, error on "
                      f"{e_on[reused].sum() / 1e3:.2f} off {e_off[reused].sum() / 1e3:.2f}")


if __name__ == "__main__":
    main()
