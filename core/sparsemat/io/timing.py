"""Measure plate read and matte write times: ``python -m sparsemat.io.timing [W H repeats]``.

Writes a synthetic half RGBA EXR (smooth ramps + 1% noise, like a grainy plate) of the given
size to a temp folder, then times :func:`read_plate` and :func:`write_frame` (rgba and
alpha-only, per lossless compression) separately. Prints minimum and median milliseconds; on a
shared, noisy machine compare minima.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from sparsemat.io.reader import read_plate
from sparsemat.io.writer import write_frame


def _times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    samples.sort()
    return samples[0], samples[len(samples) // 2]


def synthetic_plate(width: int, height: int, seed: int = 0) -> np.ndarray:
    """``[H, W, 4]`` float16 scene-linear RGBA test plate (ramps, a few highlights, 1% noise)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgba = np.stack([xx / width * 1.2, yy / height, (xx + yy) / (width + height), np.clip(xx / width * 2 - 0.5, 0, 1)], -1)
    rgba += np.random.default_rng(seed).normal(0, 0.01, rgba.shape).astype(np.float32)
    return rgba.astype(np.float16)


def measure(width: int = 3840, height: int = 2160, repeats: int = 5,
            compressions: tuple[str, ...] = ("zips", "zip", "piz")) -> dict[str, tuple[float, float]]:
    """``{label: (min_ms, median_ms)}`` for reading and writing a ``width × height`` frame."""
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = str(Path(tmp) / "plate.exr")
        rgba = synthetic_plate(width, height)
        write_frame(src, {c: rgba[:, :, i] for i, c in enumerate("RGBA")})
        plate = read_plate(src)
        results["read_plate (lin_rec709 half)"] = _times(lambda: read_plate(src), repeats)
        with warnings.catch_warnings():  # the synthetic ramps are far out of gamut as ACEScg
            warnings.simplefilter("ignore")
            results["read_plate (ACEScg half)"] = _times(lambda: read_plate(src, colorspace="ACEScg"), repeats)
        alpha = plate.alpha
        assert alpha is not None
        rgb = plate.source_rgb
        out = {"R": rgb[:, :, 0], "G": rgb[:, :, 1], "B": rgb[:, :, 2], "A": alpha}
        for comp in compressions:

            def write_rgba(c: str = comp) -> str:
                return write_frame(str(Path(tmp) / "o.exr"), out, window=plate.window, compression=c)

            def write_alpha(c: str = comp) -> str:
                return write_frame(str(Path(tmp) / "a.exr"), {"A": alpha}, window=plate.window, compression=c)

            results[f"write rgba {comp}"] = _times(write_rgba, repeats)
            results[f"write alpha {comp}"] = _times(write_alpha, repeats)
    return results


def main(argv: list[str] | None = None) -> None:
    """Print the timings for ``[W H repeats]`` (default 3840 2160 5)."""
    args = [int(a) for a in (argv if argv is not None else sys.argv[1:])]
    width, height, repeats = (args + [3840, 2160, 5][len(args):])[:3]
    print(f"OpenImageIO {oiio.__version__}, threads={oiio.get_int_attribute('threads')}, {width}x{height} RGBA half")
    for label, (lo, med) in measure(width, height, repeats).items():
        print(f"{label:32s} min {lo:7.0f} ms   median {med:7.0f} ms")


if __name__ == "__main__":
    main()
