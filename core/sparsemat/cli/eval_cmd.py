"""``sparsemat eval PRED GT [--trimap T] [--json]``: compare predicted mattes with ground truth.

PRED, GT (and T) are image files or frame patterns (``alpha.####.png``, ``alpha.%04d.exr``). For patterns the
frames present in GT (or ``--frames``) are compared; every one must exist in PRED. Metrics (see
:mod:`sparsemat.evaluation.metrics` for definitions and units): MAD, MSE, SAD, Grad, Conn over the whole image and
over the unknown region, plus dtSSD for sequences. The unknown region is the trimap's values strictly between 0 and
1 (e.g. 128/255) when ``--trimap`` is given, else the ground truth's transition dilated by ``--k`` px.

``sparsemat eval --validation`` runs the project's validation yardstick instead
(:mod:`sparsemat.evaluation.validation`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from sparsemat.errors import InputError, SettingsError
from sparsemat.settings import DEFAULT_MODEL, knob

ALL_METRICS = ("mad", "mse", "sad", "grad", "conn")


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``eval`` flags."""
    parser.add_argument("pred", nargs="?", help="predicted matte: image or frame pattern")
    parser.add_argument("gt", nargs="?", help="ground-truth matte: image or frame pattern")
    parser.add_argument("--trimap", default=None, help="trimap image/pattern (unknown = values strictly in (0, 1))")
    parser.add_argument("--frames", default=None, help="frame range for patterns (default: the frames of GT)")
    parser.add_argument("--channel", default=None, help="matte channel of PRED and GT (default: A/alpha, else first)")
    parser.add_argument("--k", type=int, default=15, help="unknown-region dilation without a trimap [%(default)s]")
    parser.add_argument("--metrics", default=",".join(ALL_METRICS), help="subset of mad,mse,sad,grad,conn")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--per-frame", action="store_true", help="also list every frame")
    parser.add_argument("--validation", action="store_true",
                        help="run the validation yardstick (synthetic >=2K set, per prior degradation)")
    add_validation_arguments(parser)


def add_validation_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the yardstick's flags (shared by ``sparsemat eval --validation`` and
    ``python -m sparsemat.evaluation.validation``); unset flags stay None and
    :func:`sparsemat.evaluation.validation.main_from_args` gives them their defaults."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help="SHM for --validation [%(default)s]")
    parser.add_argument("--out", default=None, help="--validation: write results.json/results.md here")
    parser.add_argument("--images", type=int, default=None, help="--validation: number of plates")
    parser.add_argument("--size", default=None, help="--validation: plate WxH (e.g. 2560x1440)")
    parser.add_argument("--refine-strength", type=float, default=None,
                        help="--validation: the engine's refine_strength knob for prior+SHM [1]")
    parser.add_argument("--soft-edge-guard", type=float, default=None,
                        help="--validation: the engine's soft_edge_guard knob for prior+SHM "
                             f"[the knob's default, {knob('soft_edge_guard').default:g}; 0 = off]")
    parser.add_argument("--colour-bound", default=None, choices=("on", "off"),
                        help="--validation: the engine's colour_bound knob for prior+SHM "
                             f"[the knob's default, {'on' if knob('colour_bound').default else 'off'}]")
    parser.add_argument("--cascade-levels", type=int, default=None, choices=(1, 2, 3),
                        help="--validation: the engine's cascade_levels knob for prior+SHM [1]")
    parser.add_argument("--max-active-pixels", type=int, default=None,
                        help="--validation: the engine's active-pixel budget for prior+SHM [the plate's pixel count: "
                             "one pass on any machine, not the engine's free-memory default]")
    parser.add_argument("--kernel-size", type=int, default=None,
                        help="--validation: the engine's kernel_size knob (Edge width, odd px) for prior+SHM "
                             f"[the knob's default, {knob('kernel_size').default}]")
    parser.add_argument("--seed", type=int, default=None,
                        help="--validation: plate seed; any seed but the yardstick's 271828 draws a selection set")
    parser.add_argument("--kinds", default=None,
                        help="--validation: degradations to run, comma-separated ('target' = the 8 target kinds)")


def unknown_from_trimap(trimap: np.ndarray) -> np.ndarray:
    """Unknown region of a trimap ``[H, W]`` in [0, 1]: values strictly between 0 and 1 (bool ``[H, W]``)."""
    t = np.asarray(trimap, dtype=np.float32)
    return (t > 1.0 / 512.0) & (t < 1.0 - 1.0 / 512.0)


def evaluate_frame(pred: np.ndarray, gt: np.ndarray, unknown: np.ndarray, metrics: Sequence[str]) -> dict[str, float]:
    """Metrics of one frame over the whole image and over ``unknown``.

    Args:
        pred, gt: ``[H, W]`` float in [0, 1].
        unknown: ``[H, W]`` bool unknown region.
        metrics: names from :data:`ALL_METRICS`.

    Returns:
        ``{"mad": ..., "mad_unk": ..., ...}`` in the units of :data:`sparsemat.evaluation.metrics.UNITS`.
    """
    from sparsemat.evaluation import metrics as M

    out: dict[str, float] = {}
    if "grad" in metrics:
        d = (M.gradient_magnitude(pred) - M.gradient_magnitude(gt)) ** 2
        out["grad"], out["grad_unk"] = float(d.sum() / 1e3), float(d[unknown].sum() / 1e3)
    if "conn" in metrics:
        c = M.conn_map(pred, gt)
        out["conn"], out["conn_unk"] = float(c.sum() / 1e3), float(c[unknown].sum() / 1e3)
    fns = {"mad": M.mad, "mse": M.mse, "sad": M.sad}
    for name in metrics:
        if name in fns:
            out[name] = fns[name](pred, gt)
            out[name + "_unk"] = fns[name](pred, gt, unknown)
    return out


def _read(path: str, frame: int | None, channel: str | None) -> np.ndarray:
    from sparsemat.io.reader import read_matte

    return read_matte(path, channel, frame=frame)


def _read_trimap(path: str, frame: int | None) -> np.ndarray:
    """A trimap's grey levels: its R (or Y, else first) channel, never A (an RGBA trimap's A is opaque)."""
    from sparsemat.io.reader import channel_names, resolve_path

    names = channel_names(resolve_path(path, frame))[0]
    lower = [n.lower() for n in names]
    pick = next((names[lower.index(c)] for c in ("r", "y") if c in lower), names[0] if names else None)
    return _read(path, frame, pick)


def compare(pred: str, gt: str, trimap: str | None = None, frames: str | None = None, channel: str | None = None,
            k: int = 15, metrics: Sequence[str] = ALL_METRICS) -> dict[str, object]:
    """Compare mattes on disk.

    Returns:
        ``{"frames": [...] or None, "mean": {metric: value}, "per_frame": [{frame, metrics...}]}``; ``mean``
        holds per-frame means and, for sequences, ``dtssd``/``dtssd_unk`` (frame 0 counted as 0, RVM's convention).

    Raises:
        InputError: missing files, size mismatches.
    """
    from sparsemat.evaluation.metrics import dtssd, unknown_mask
    from sparsemat.io.sequence import discover_frames, has_frame_token, missing_frames, parse_frame_range

    seq = has_frame_token(gt)
    if seq != has_frame_token(pred):
        raise InputError("PRED and GT must both be single images or both frame patterns.")
    frame_list: list[int | None]
    if seq:
        found = parse_frame_range(frames) if frames else discover_frames(gt)
        if not found:
            raise InputError(f"No frames of {gt} exist.")
        for pat in (gt, pred) + ((trimap,) if trimap and has_frame_token(trimap) else ()):
            miss = missing_frames(pat, found)
            if miss:
                raise InputError(f"{pat}: frame(s) {miss[:10]} do not exist.")
        frame_list = list(found)
    else:
        frame_list = [None]
    rows: list[dict[str, float]] = []
    prev: tuple[np.ndarray, np.ndarray] | None = None
    for f in frame_list:
        p, g = _read(pred, f, channel), _read(gt, f, channel)
        if p.shape != g.shape:
            raise InputError(f"Frame {f}: PRED is {p.shape[1]}x{p.shape[0]} but GT is {g.shape[1]}x{g.shape[0]}.")
        if trimap:
            t_frame = f if has_frame_token(trimap) else None
            t = _read_trimap(trimap, t_frame)
            if t.shape != g.shape:
                raise InputError(f"Trimap is {t.shape[1]}x{t.shape[0]} but GT is {g.shape[1]}x{g.shape[0]}.")
            unk = unknown_from_trimap(t)
            if not unk.any():
                where = trimap if t_frame is None else f"{trimap} (frame {t_frame})"
                raise InputError(f"{where} has no unknown pixels (values between 0 and 1 in its first colour "
                                 "channel), so the unknown-region metrics would be empty. Check the trimap.")
        else:
            unk = unknown_mask(g, k)
        row = evaluate_frame(p, g, unk, metrics)
        if seq:
            if prev is None:
                row["dtssd"], row["dtssd_unk"] = 0.0, 0.0
            else:
                row["dtssd"] = dtssd(p, prev[0], g, prev[1])
                row["dtssd_unk"] = dtssd(p, prev[0], g, prev[1], unk)
            prev = (p, g)
        rows.append(row)
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    per_frame = [{"frame": f, **r} for f, r in zip(frame_list, rows, strict=True)]
    return {"frames": frame_list if seq else None, "mean": mean, "per_frame": per_frame}


def format_result(result: dict[str, object], per_frame: bool = False) -> str:
    """A plain-text table: one row per metric, columns whole image / unknown region (with units)."""
    from sparsemat.evaluation.metrics import UNITS

    mean = result["mean"]
    assert isinstance(mean, dict)
    names = [m for m in (*ALL_METRICS, "dtssd") if m in mean]
    lines = [f"{'metric':<8} {'unit':<6} {'whole':>12} {'unknown':>12}"]
    for m in names:
        lines.append(f"{m:<8} {UNITS[m]:<6} {mean[m]:>12.4f} {mean[m + '_unk']:>12.4f}")
    frames = result.get("frames")
    if isinstance(frames, list):
        lines.append(f"({len(frames)} frames; per-frame means, dtSSD frame 0 = 0)")
    if per_frame and isinstance(result.get("per_frame"), list):
        rows = result["per_frame"]
        assert isinstance(rows, list)
        lines.append("")
        lines.append("frame " + " ".join(f"{m + '_unk':>10}" for m in names))
        for r in rows:
            lines.append(f"{r['frame']!s:<5} " + " ".join(f"{r[m + '_unk']:>10.4f}" for m in names))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate (or run the validation yardstick); 0 on success."""
    if args.validation:
        from sparsemat.evaluation.validation import main_from_args

        return main_from_args(args)
    if not args.pred or not args.gt:
        raise SettingsError("PRED/GT", None, "give the predicted and the ground-truth matte (or --validation)")
    metrics = tuple(m for m in str(args.metrics).split(",") if m)
    bad = [m for m in metrics if m not in ALL_METRICS]
    if bad:
        raise SettingsError("--metrics", ",".join(bad), f"choose from {', '.join(ALL_METRICS)}")
    result = compare(args.pred, args.gt, args.trimap, args.frames, args.channel, args.k, metrics)
    if args.json:
        json.dump(result if args.per_frame else {k: v for k, v in result.items() if k != "per_frame"},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_result(result, args.per_frame))
    return 0
