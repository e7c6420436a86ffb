"""Seeded benchmark plates: a generated sequence written as EXR plates, ground truth and a prior.

Every plate comes from :func:`sparsemat.train.synth.make_sequence` (the demo generator; backgrounds and
foreground textures from ``../shared/data/backgrounds`` when present, generated textures otherwise), so
the same seed gives the same pixels on every machine that has the same photo folder.

**Prior.** The bench feeds the engine an external ``input`` matte: the ground truth degraded by
:func:`sparsemat.train.synth.degrade_prior` (``down8``: ×8 area-downsampled, bilinearly upsampled) and then
reduced to the prior network's 512-px short side. The quality figures therefore measure the *refiner*
(SHM, patch, guided filter) on one shared, realistic prior, not a prior network.

Files per frame (in ``folder``): ``plate.NNNN.exr`` (RGB half, scene-linear Rec.709, as a plate from a
pipeline), ``prior.NNNN.exr`` (Y half, the low-resolution matte) and ``gt.NNNN.npy`` (``[H, W]`` float32).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Named sizes ``(height, width)``: DCI 2K, UHD 4K (the paper's 4K), 6K and 8K UHD.
NAMED_SIZES: dict[str, tuple[int, int]] = {
    "hd": (1080, 1920),
    "2k": (1080, 2048),
    "4k": (2160, 3840),
    "6k": (3240, 5760),
    "8k": (4320, 7680),
}

#: Prior degradation applied to the ground truth before it is reduced to the prior resolution.
PRIOR_KIND = "down8"


def parse_size(token: str) -> tuple[str, int, int]:
    """``"4k"`` → ``("4k", 2160, 3840)``; ``"256x144"`` (width × height) → ``("256x144", 144, 256)``.

    Raises:
        ValueError: neither a named size nor ``WxH``.
    """
    key = token.strip().lower()
    if key in NAMED_SIZES:
        h, w = NAMED_SIZES[key]
        return key, h, w
    m = re.fullmatch(r"(\d+)x(\d+)", key)
    if not m:
        raise ValueError(f"size {token!r}: use one of {', '.join(NAMED_SIZES)} or WIDTHxHEIGHT (e.g. 256x144)")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 32 or h < 32:
        raise ValueError(f"size {token!r} is too small (at least 32x32)")
    return key, h, w


@dataclass
class PlateSet:
    """A generated sequence on disk.

    Attributes:
        folder: where the files are.
        name: size label (``"4k"``).
        height, width: plate size in pixels.
        frames: number of frames (numbered from 0).
        seed: generator seed.
        motion: ``"locked"`` (locked-off camera) or ``"moving"`` (panning camera).
        photos: number of photographs the generator drew textures from (0: generated textures).
    """

    folder: str
    name: str
    height: int
    width: int
    frames: int
    seed: int
    motion: str
    photos: int

    def plate_path(self, frame: int) -> str:
        """EXR plate of ``frame`` (RGB half, lin_rec709)."""
        return str(Path(self.folder) / f"plate.{frame:04d}.exr")

    def prior_path(self, frame: int) -> str:
        """EXR low-resolution prior matte of ``frame`` (one channel ``Y``)."""
        return str(Path(self.folder) / f"prior.{frame:04d}.exr")

    def gt_path(self, frame: int) -> str:
        """``.npy`` ground-truth matte of ``frame``."""
        return str(Path(self.folder) / f"gt.{frame:04d}.npy")

    def gt(self, frame: int) -> np.ndarray:
        """Ground-truth matte ``[H, W]`` float32 in [0, 1]."""
        return np.asarray(np.load(self.gt_path(frame)), dtype=np.float32)

    def save(self) -> None:
        """Write ``plates.json`` describing the set."""
        (Path(self.folder) / "plates.json").write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> PlateSet:
        """Read a set written by :func:`make_plates`."""
        return cls(**json.loads((Path(folder) / "plates.json").read_text()))


def make_plates(folder: str | Path, size: str, frames: int, seed: int = 3, motion: str = "locked",
                photos: bool = True) -> PlateSet:
    """Generate and write a seeded plate sequence (see the module docstring); reuse it when already there.

    Args:
        folder: destination folder (created).
        size: a size token for :func:`parse_size`.
        frames: number of frames.
        seed: generator seed (3 gives ≈10 % band at 4K, the paper's ≈90 % sparsity).
        motion: ``"locked"`` or ``"moving"``.
        photos: draw backgrounds/textures from the shared photo folder when it exists.
    """
    from sparsemat.io import DEFAULT_LINEAR, DISPLAY_SRGB, convert, write_frame
    from sparsemat.train import synth

    name, h, w = parse_size(size)
    out = Path(folder)
    if (out / "plates.json").is_file():
        existing = PlateSet.load(out)
        if (existing.height, existing.width, existing.frames, existing.seed, existing.motion) == (h, w, frames, seed,
                                                                                                  motion):
            return existing
    out.mkdir(parents=True, exist_ok=True)
    pics = synth.load_photos() if photos else []
    plates = PlateSet(str(out), name, h, w, frames, seed, motion, len(pics))
    seq = synth.make_sequence(seed, (h, w), frames, motion=motion, backgrounds=pics or None)
    for f, sample in enumerate(seq):
        linear = convert(sample.rgb, DISPLAY_SRGB, DEFAULT_LINEAR)
        write_frame(plates.plate_path(f), {"R": linear[..., 0], "G": linear[..., 1], "B": linear[..., 2]})
        prior = synth.lowres_prior(synth.degrade_prior(sample.alpha, seed * 1000 + f, kind=PRIOR_KIND))
        write_frame(plates.prior_path(f), {"Y": prior})
        np.save(plates.gt_path(f), sample.alpha.astype(np.float32))
    plates.save()
    return plates
