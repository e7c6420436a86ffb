"""Anamorphic plates: how far the matte of a 2x-squeezed photo strays from the matte of the photo itself.

For each photo: the reference is the engine (prior ``rvm``, the default model, no temporal history) on the photo
with square pixels. The photo is then squeezed to half its width (antialiased bilinear: what a 2x anamorphic lens
records) and rendered twice: with pixel aspect 2 (the prior sees it desqueezed; the engine's behaviour) and with
pixel aspect 1 (the prior sees a squeezed picture; the behaviour before the engine honoured the aspect). Each
result is stretched back to the photo's width and compared with the reference: MAD (x1e3) of the prior and of the
final matte over the whole image and over the reference's transition band (0.02 < alpha < 0.98, dilated by 7 px).
Photos in which the reference finds no subject are reported and skipped. Needs the ``rvm`` prior
(``install.py --with-rvm``); about 10 s a photo of 0.25 Mpixel on two cores.

Usage::

    python tools/anamorphic.py --photos ../shared/data/backgrounds astronaut.png chelsea.png
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from sparsemat import Settings
from sparsemat.engine import FrameInput, Session
from sparsemat.io import read_plate


def resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` or ``[H, W, C]`` float → ``size``: antialiased bilinear when shrinking, bilinear otherwise."""
    t = torch.from_numpy(np.ascontiguousarray(a, np.float32))
    t = t.permute(2, 0, 1)[None] if t.dim() == 3 else t[None, None]
    shrink = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=shrink)[0]
    return (out.permute(1, 2, 0) if a.ndim == 3 else out[0]).numpy()


def render(rgb: np.ndarray, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """``(prior, alpha)`` ``[H, W]`` of one frame through a fresh session (RVM starts with no history)."""
    res = Session(Settings(prior="rvm", device="cpu", temporal=False)).process(0, FrameInput(rgb=rgb, pixel_aspect=aspect))
    return res.prior, res.alpha


def compare(path: str) -> dict[str, object]:
    """One photo's row: MAD (x1e3) against the square-pixel reference, for pixel aspect 2 and 1."""
    rgb = read_plate(path).rgb
    h, w = rgb.shape[:2]
    ref_prior, ref_alpha = render(rgb, 1.0)
    soft = torch.from_numpy(((ref_alpha > 0.02) & (ref_alpha < 0.98)).astype(np.float32))[None, None]
    band = (F.max_pool2d(soft, 15, 1, 7)[0, 0] > 0).numpy()
    row: dict[str, object] = {"photo": os.path.basename(path), "size": f"{w}x{h}", "band_share": round(float(band.mean()), 4)}
    if not band.any():
        row["skipped"] = "the reference matte has no transition: no subject found"
        return row
    squeezed = np.clip(resize(rgb, (h, w // 2)), 0.0, 1.0)
    for aspect in (2.0, 1.0):
        prior, alpha = (resize(a, (h, w)) for a in render(squeezed, aspect))
        for what, got, ref in (("prior", prior, ref_prior), ("alpha", alpha, ref_alpha)):
            err = np.abs(got - ref)
            row[f"{what}_mad_par{aspect:g}"] = round(float(err.mean()) * 1e3, 2)
            row[f"{what}_band_mad_par{aspect:g}"] = round(float(err[band].mean()) * 1e3, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default=os.path.join("..", "shared", "data", "backgrounds"), help="photo folder")
    parser.add_argument("names", nargs="*", default=["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"])
    args = parser.parse_args()
    for name in args.names:
        print(json.dumps(compare(os.path.join(args.photos, name))), flush=True)


if __name__ == "__main__":
    main()
