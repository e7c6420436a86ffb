"""``sparsemat demo``: make a 4K plate sequence in code, render it with ``sparsemat render``, report the error.

What it does, all offline:

1. :func:`sparsemat.train.synth.make_sequence` draws a subject with fine hair-like strands moving over
   a textured background (a real photograph from ``../shared/data/backgrounds`` when present,
   generated textures otherwise) plus its ground-truth alpha.
2. Plates are written as scene-linear half EXR (the generator's display sRGB converted to
   ``lin_rec709`` through :mod:`sparsemat.io.colour`, like real plates), the ground truth as
   ``gt/alpha.####.exr`` and a rough prior matte per frame standing in for a roto/keyer matte
   (ground truth ×8 area-downsampled, bilinearly upsampled and slightly blurred).
3. The sequence is rendered by the very code path of ``sparsemat render`` (its parser and
   :func:`sparsemat.cli.render.run`), with ``--overlay`` so the sparsity map is in the files.
4. Per-frame stats (active share, seconds per stage, cascade scales) and the unknown-region MAD
   and Grad of the refined matte against the prior alone are printed, and a PNG contact sheet is
   saved for a person to look at.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sparsemat.settings import DEFAULT_MODEL

#: Named sizes as ``(height, width)``.
SIZES: dict[str, tuple[int, int]] = {"4k": (2160, 3840), "uhd": (2160, 3840), "2k": (1080, 2048), "hd": (1080, 1920)}
#: Prior degradation: area-downsample factor and blur sigma per 1080 lines of plate height.
PRIOR_DOWN = 8
PRIOR_BLUR_PER_1080 = 1.5


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the ``demo`` flags."""
    parser.add_argument("--out", default="demo_out", help="output folder (default: ./demo_out)")
    parser.add_argument("--frames", type=int, default=4, help="number of frames (default: 4)")
    parser.add_argument("--size", default="4k", help="4k (3840x2160, default), 2k (2048x1080), hd or WxH")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated shot (default: 7)")
    parser.add_argument("--model", default=None, help="refiner model passed to render (default: the render default)")


def parse_size(text: str) -> tuple[int, int]:
    """``"4k"`` / ``"2k"`` / ``"hd"`` / ``"WxH"`` → ``(height, width)``; SettingsError otherwise."""
    from sparsemat.errors import SettingsError

    key = text.strip().lower()
    if key in SIZES:
        return SIZES[key]
    m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", key)
    if m is None or int(m.group(1)) < 32 or int(m.group(2)) < 32:
        raise SettingsError("size", text, "use 4k, 2k, hd or WxH with both sides at least 32, e.g. 1920x1080")
    return int(m.group(2)), int(m.group(1))


def _background(seed: int) -> tuple[list[np.ndarray] | None, str]:
    """One real photograph chosen by ``seed`` (display sRGB), or None for generated textures."""
    import OpenImageIO as oiio

    from sparsemat.train.synth import find_photo_dir

    folder = find_photo_dir()
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if folder else []
    if not files:
        return None, "generated texture (no photographs in ../shared/data/backgrounds)"
    path = files[np.random.default_rng(seed).integers(len(files))]
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()
        return None, f"generated texture ({path.name} unreadable)"
    try:
        px = np.asarray(inp.read_image(format="float"), dtype=np.float32)
    finally:
        inp.close()
    px = px[..., None] if px.ndim == 2 else px
    px = np.repeat(px[..., :1], 3, axis=2) if px.shape[2] < 3 else px[..., :3]
    return [np.clip(px, 0.0, 1.0)], (f"photograph {path.name} ({px.shape[1]}x{px.shape[0]}), cropped, rescaled and "
                                     "sometimes defocused by the generator (1 in 10 shots draws a generated texture)")


def rough_prior(alpha: np.ndarray) -> np.ndarray:
    """A roto/keyer-like matte from ground truth: ×8 area-down, bilinear up, slight Gaussian blur.

    ``alpha`` ``[H, W]`` float32 in [0, 1] → ``[H, W]`` float32 in [0, 1].
    """
    from sparsemat.train import imops

    h, w = alpha.shape
    small = imops.resize(alpha, (max(1, -(-h // PRIOR_DOWN)), max(1, -(-w // PRIOR_DOWN))), mode="aa")
    up = imops.resize(small, (h, w), mode="bilinear")
    sigma = PRIOR_BLUR_PER_1080 * max(1.0, h / 1080.0)
    return np.clip(imops.gaussian_blur(up, sigma), 0.0, 1.0).astype(np.float32)


def _generate(args: argparse.Namespace, size: tuple[int, int], out: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Write plates, ground truth and priors; return (ground-truth alphas, display-sRGB plates)."""
    from sparsemat.io import DEFAULT_LINEAR, DISPLAY_SRGB, convert, write_frame
    from sparsemat.train.synth import make_sequence

    backgrounds, what = _background(args.seed)
    print(f"background: {what}")
    gts: list[np.ndarray] = []
    shown: list[np.ndarray] = []
    t0 = time.perf_counter()
    for i, sample in enumerate(make_sequence(args.seed, size, args.frames, motion="locked", backgrounds=backgrounds)):
        frame = i + 1
        lin = convert(sample.rgb, DISPLAY_SRGB, DEFAULT_LINEAR).astype(np.float16)
        write_frame(str(out / f"plates/plate.{frame:04d}.exr"), {c: lin[..., k] for k, c in enumerate("RGB")},
                    metadata={"note": "sparsemat demo plate, lin_rec709"})
        write_frame(str(out / f"gt/alpha.{frame:04d}.exr"), {"A": sample.alpha})
        write_frame(str(out / f"prior/prior.{frame:04d}.exr"), {"A": rough_prior(sample.alpha)},
                    metadata={"note": f"ground truth x{PRIOR_DOWN} area-down + bilinear up + blur"})
        gts.append(sample.alpha)
        shown.append(sample.rgb)
        print(f"  generated frame {frame}/{args.frames} ({time.perf_counter() - t0:.1f} s so far)", flush=True)
    return gts, shown


def _region_errors(pred: np.ndarray, prior: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Unknown-region MAD (×1e3) and Grad (/1e3) of the refined matte and of the prior alone."""
    from sparsemat.evaluation import grad, mad, unknown_mask

    unk = unknown_mask(gt)
    ys, xs = np.nonzero(unk)
    if ys.size == 0:
        return {}
    pad = 16  # beyond the Gaussian-derivative support, so the crop gives the full-frame figures
    sl = (slice(max(0, ys.min() - pad), ys.max() + pad + 1), slice(max(0, xs.min() - pad), xs.max() + pad + 1))
    m, g = unk[sl], gt[sl]
    return {
        "mad_refined": mad(pred[sl], g, m), "mad_prior": mad(prior[sl], g, m),
        "grad_refined": grad(pred[sl], g, m), "grad_prior": grad(prior[sl], g, m),
        "unknown_share": float(unk.mean()),
    }


def _read_channels(path: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(path)
    if inp is None:
        from sparsemat.errors import InputError

        raise InputError(f"Cannot read the demo output {path}: {oiio.geterror()}")
    try:
        spec = inp.spec()
        px = np.asarray(inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT))
        chans = list(spec.channelnames)
    finally:
        inp.close()
    return {n: px[..., chans.index(n)] for n in names if n in chans}


def run(args: argparse.Namespace) -> int:
    """Generate, render, evaluate and draw the contact sheet; returns the exit status."""
    from sparsemat.builders import shipped_weight_path
    from sparsemat.cli import render
    from sparsemat.cli.contact_sheet import Panel, hair_crop, save_contact_sheet, sparsity_overlay
    from sparsemat.cli.main import build_parser
    from sparsemat.io import read_matte, read_metadata

    size = parse_size(args.size)
    if args.frames < 1:
        from sparsemat.errors import SettingsError

        raise SettingsError("frames", args.frames, "render at least 1 frame")
    out = Path(args.out).resolve()
    height, width = size
    print(f"sparsemat demo: {args.frames} frame(s) at {width}x{height}, seed {args.seed}, into {out}")
    weights = shipped_weight_path(DEFAULT_MODEL)
    model = args.model or DEFAULT_MODEL
    trained = model != DEFAULT_MODEL or weights.is_file()
    if not trained:
        print(f"NOTE: no shipped refiner weights ({weights}): the SHM refiner is UNTRAINED (random weights).\n"
              "      The refined matte below is NOT meaningful; expect it to be worse than the prior.")
    print(f"prior matte: stand-in for roto/keyer = ground truth x{PRIOR_DOWN} area-downsampled, bilinearly "
          f"upsampled, Gaussian blur sigma {PRIOR_BLUR_PER_1080 * max(1.0, height / 1080):.2g} px")

    t_gen = time.perf_counter()
    gts, shown = _generate(args, size, out)
    t_gen = time.perf_counter() - t_gen

    # ---- the same code path as `sparsemat render`
    argv = ["render", str(out / "plates/plate.####.exr"), "-o", str(out / "mattes/matte.####.exr"),
            "--prior", str(out / "prior/prior.####.exr"), "--prior-model", "input", "--overlay",
            "--progress", "json"]
    if args.model:
        argv += ["--model", args.model]
    print("render: sparsemat " + " ".join(argv), flush=True)
    render_args = build_parser().parse_args(argv)
    render_args.quiet = getattr(args, "quiet", False)
    stream = io.StringIO()
    t_render = time.perf_counter()
    status = render.run(render_args, progress_stream=stream)
    t_render = time.perf_counter() - t_render
    records = {r["frame"]: r for r in map(json.loads, stream.getvalue().splitlines())}

    # ---- per-frame stats and errors against the ground truth
    print(f"\n{'frame':>5} {'active':>7} {'scales':>9} {'prior s':>8} {'maps s':>7} {'shm s':>7} {'blend s':>8}"
          f" {'wall s':>7}   {'MAD refined/prior':>18} {'Grad refined/prior':>19}")
    totals: dict[str, list[float]] = {k: [] for k in ("mad_refined", "mad_prior", "grad_refined", "grad_prior")}
    last: dict[str, Any] = {}
    for i, gt in enumerate(gts):
        frame = i + 1
        rec = records.get(frame, {})
        path = str(out / f"mattes/matte.{frame:04d}.exr")
        if rec.get("status") != "done":
            print(f"{frame:5d} failed: {rec.get('message', 'not rendered')}")
            continue
        meta = read_metadata(path)
        stages = json.loads(str(meta["stage_seconds"]))
        chans = _read_channels(path, ("A", "sparsity.active", "sparsity.spatial"))
        prior = read_matte(str(out / f"prior/prior.{frame:04d}.exr"))
        err = _region_errors(chans["A"], prior, gt)
        for k in totals:
            totals[k].append(err.get(k, math.nan))
        print(f"{frame:5d} {float(meta['active_share']):7.2%} {str(meta['cascade_scales']):>9} "
              f"{stages.get('prior', 0):8.2f} {stages.get('maps', 0):7.2f} {stages.get('shm', 0):7.2f} "
              f"{stages.get('blend', 0):8.2f} {float(rec['seconds']):7.2f}   "
              f"{err.get('mad_refined', math.nan):8.2f} / {err.get('mad_prior', math.nan):7.2f} "
              f"{err.get('grad_refined', math.nan):9.2f} / {err.get('grad_prior', math.nan):7.2f}")
        last = {"frame": frame, "chans": chans, "prior": prior, "gt": gt, "rgb": shown[i]}
    if totals["mad_refined"]:
        mean = {k: float(np.nanmean(v)) for k, v in totals.items()}
        verdict = "better" if mean["mad_refined"] < mean["mad_prior"] else "WORSE"
        print(f"mean  unknown-region MAD x1e3: refined {mean['mad_refined']:.2f} vs prior alone "
              f"{mean['mad_prior']:.2f} ({verdict}); Grad /1e3: refined {mean['grad_refined']:.2f} vs prior "
              f"{mean['grad_prior']:.2f}")
        if not trained:
            print("      (untrained refiner: these figures measure random weights, not SparseMat)")
    print(f"time: generate {t_gen:.1f} s, render {t_render:.1f} s ({t_render / max(1, len(gts)):.1f} s/frame "
          f"including EXR read/write); load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # ---- contact sheet
    if last:
        chans, rgb, gt = last["chans"], last["rgb"], last["gt"]
        crop = min(384, height, width)
        y, x = hair_crop(gt, crop)
        win = (slice(y, y + crop), slice(x, x + crop))
        spatial = chans.get("sparsity.spatial")
        overlay = sparsity_overlay(rgb, chans["sparsity.active"], spatial)
        reused = spatial is not None and bool(((spatial > 0.5) & (chans["sparsity.active"] < 0.5)).any())
        title = (f"sparsemat demo  frame {last['frame']}  {width}x{height}  seed {args.seed}  "
                 f"{'' if trained else 'UNTRAINED refiner  '}crop 1:1 at x={x} y={y}")
        sheet = save_contact_sheet(
            str(out / "contact_sheet.png"), title,
            [Panel("plate (display sRGB)", rgb), Panel("refined alpha", np.repeat(chans["A"][..., None], 3, 2)),
             Panel("sparsity: red refined" + (", blue reused" if reused else ""), overlay)],
            [Panel("plate 1:1", rgb[win]), Panel("ground truth", _grey3(gt[win])),
             Panel("prior (rough matte)", _grey3(last["prior"][win])), Panel("refined", _grey3(chans["A"][win]))],
        )
        print(f"contact sheet: {sheet}")
    print(f"files: {out}/plates, {out}/prior, {out}/gt, {out}/mattes (rgba + sparsity.* channels)")
    if status != 0:
        print(f"sparsemat demo: render exited with status {status}", file=sys.stderr)
    return status


def _grey3(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(a, 0.0, 1.0)[..., None], 3, axis=2).astype(np.float32)


__all__ = ["add_parser", "parse_size", "rough_prior", "run"]
