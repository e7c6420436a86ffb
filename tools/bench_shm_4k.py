"""Time the SHM (torch backend, CPU) at 4K on a realistic band and report peak RSS.

Usage: python tools/bench_shm_4k.py lite|paper [band_px] [repeats]

The active set is the dilated boundary of a few blobs (circles + an ellipse) in 3840×2160, the
shape a dilated prior transition band takes. Prints active share, MACs, per-run seconds and the
process's peak RSS (ru_maxrss), so run one variant per process.
"""

from __future__ import annotations

import resource
import sys
import time

import torch
import torch.nn.functional as F
from sparsemat.builders import build_shm
from sparsemat.sparse import from_coords


def band_mask(h: int, w: int, band: int) -> torch.Tensor:
    """[1, H, W] bool: a `band`-px-wide ring around the union of a few wobbly blobs."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    ang = torch.atan2(yy - h / 2, xx - w / 2)
    r = torch.sqrt((yy - h / 2) ** 2 + (xx - w / 2) ** 2)
    fg = r < (h * 0.33) * (1 + 0.15 * torch.sin(7 * ang))
    fg |= ((yy - h * 0.2) / (h * 0.12)) ** 2 + ((xx - w * 0.18) / (w * 0.1)) ** 2 < 1
    fg |= ((yy - h * 0.78) ** 2 + (xx - w * 0.82) ** 2) < (h * 0.15) ** 2
    f = fg[None, None].float()
    dil = F.max_pool2d(f, 2 * band + 1, 1, band)
    ero = 1 - F.max_pool2d(1 - f, 2 * band + 1, 1, band)
    return (dil - ero)[:, 0] > 0


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "lite"
    band = int(sys.argv[2]) if len(sys.argv) > 2 else 24
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    h, w = 2160, 3840
    mask = band_mask(h, w, band)
    coords = torch.nonzero(mask)
    n = coords.shape[0]
    feats = torch.rand(n, 4) * 2 - 1
    lr_rgb = torch.rand(1, 3, 288, 512)
    lr_prior = torch.rand(1, 1, 288, 512)
    model = build_shm(name)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name}: {n} active sites ({100 * n / (h * w):.2f} %), threads={torch.get_num_threads()}")
    x = from_coords(coords, feats, (h, w), 1, "torch")
    print(f"  GMACs {model.macs(x, (288, 512)) / 1e9:.2f}, site counts {model.site_counts(x)}")
    for i in range(repeats):
        x = from_coords(coords, feats, (h, w), 1, "torch")  # fresh pass: rulebooks rebuilt
        t = time.perf_counter()
        with torch.inference_mode():
            out = model(x, lr_rgb, lr_prior)
        dt = time.perf_counter() - t
        print(f"  run {i}: {dt:.2f} s, alpha {tuple(out.alpha.features.shape)}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {rss:.0f} MB (before the passes {rss0:.0f} MB)")


if __name__ == "__main__":
    main()
