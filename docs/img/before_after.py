"""Make docs/img/before_after*.png: real photographs through the engine with the RVM prior and the shipped SHM.

Usage: ``python docs/img/before_after.py [--model lite_cs4] [--prior-size 128] [--out docs/img]`` (the model
defaults to the engine's default refiner; a model other than ``lite`` writes ``before_after_<model>.png``,
``lite``'s figure is ``before_after.png``)

For each photo (astronaut, chelsea, coffee from the shared CC0 folder, held out of training) the engine runs
with ``prior="rvm"``. The photos are only 451–600 px wide, so the prior is run at ``--prior-size`` (128, the
knob's minimum: a ×2.3–×3 coarser prior, like a 512 px prior on a 1.5K–2K plate) to leave the SHM something to
refine. Each figure row: plate | upsampled prior | refined, then ×4 nearest-neighbour zooms of one edge crop
(the crop with the largest refinement change). Also writes the per-photo mattes (``*_prior.png``,
``*_refined.png``) to ``--mattes`` when given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")
#: zoom windows (y, x, side) on an edge of each subject; None: where the SHM changed the prior most
CROPS: dict[str, tuple[int, int, int] | None] = {"astronaut.png": (2, 150, 96), "chelsea.png": None, "coffee.png": None}


def _read(path: Path) -> np.ndarray:
    inp = oiio.ImageInput.open(str(path))
    px = np.asarray(inp.read_image(format="float"), dtype=np.float32)
    inp.close()
    return np.clip(px[..., :3], 0, 1)


def _write(path: Path, img: np.ndarray) -> None:
    img = img if img.ndim == 3 else img[..., None]
    spec = oiio.ImageSpec(img.shape[1], img.shape[0], img.shape[2], oiio.UINT8)
    out = oiio.ImageOutput.create(str(path))
    if out is None or not out.open(str(path), spec):
        raise SystemExit(f"cannot write {path}: {oiio.geterror()}")
    out.write_image(np.ascontiguousarray(img, dtype=np.float32))
    out.close()


def _label(img: np.ndarray, text: str) -> np.ndarray:
    buf = oiio.ImageBuf(np.ascontiguousarray(img, dtype=np.float32))
    h = img.shape[0]
    size = max(12, h // 18)
    oiio.ImageBufAlgo.render_box(buf, 0, 0, min(img.shape[1] - 1, int(size * 0.62 * len(text)) + 8), size + 8,
                                 (0, 0, 0), fill=True)
    oiio.ImageBufAlgo.render_text(buf, 4, size + 2, text, size, "", (1, 1, 0.3))
    return np.asarray(buf.get_pixels(oiio.FLOAT), dtype=np.float32)


def _grey(a: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(a, 0, 1)[..., None], 3, axis=2)


def _edge_crop(prior: np.ndarray, refined: np.ndarray, side: int) -> tuple[int, int]:
    diff = np.abs(refined - prior)
    h, w = diff.shape
    best, pos = -1.0, (0, 0)
    step = max(4, side // 4)
    for y in range(0, max(1, h - side), step):
        for x in range(0, max(1, w - side), step):
            v = float(diff[y:y + side, x:x + side].sum())
            if v > best:
                best, pos = v, (y, x)
    return pos


def figure_row(rgb: np.ndarray, prior: np.ndarray, refined: np.ndarray, zoom: int = 4, model: str = "lite",
               crop: tuple[int, int, int] | None = None) -> np.ndarray:
    """One figure row ``[H', W', 3]`` float32: three full panels over three zoomed crops.

    ``crop = (y, x, side)`` picks the zoomed window; None takes the window the SHM changed most.
    """
    h, w = prior.shape
    if crop is not None:
        y, x, side = crop
    else:
        side = max(32, min(h, w) // 5)
        y, x = _edge_crop(prior, refined, side)
    sl = (slice(y, y + side), slice(x, x + side))
    plate = rgb.copy()
    for t in range(2):  # outline the crop
        plate[y + t, x:x + side] = plate[y + side - 1 - t, x:x + side] = (1, 0.2, 0.2)
        plate[y:y + side, x + t] = plate[y:y + side, x + side - 1 - t] = (1, 0.2, 0.2)
    top = [_label(plate, "plate"), _label(_grey(prior), "upsampled prior (RVM)"), _label(_grey(refined), f"+ SHM {model}")]

    def z(img: np.ndarray) -> np.ndarray:
        return np.kron(img[sl], np.ones((zoom, zoom, 1), np.float32))

    bottom = [z(rgb), z(_grey(prior)), z(_grey(refined))]
    sep = np.ones((h, 6, 3), np.float32)
    row1 = np.concatenate([top[0], sep, top[1], sep, top[2]], axis=1)
    zs = side * zoom
    zsep = np.ones((zs, 6, 3), np.float32)
    row2 = np.concatenate([bottom[0], zsep, bottom[1], zsep, bottom[2]], axis=1)
    width = max(row1.shape[1], row2.shape[1])

    def pad(r: np.ndarray) -> np.ndarray:
        return np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=1.0)

    return np.concatenate([pad(row1), np.ones((6, width, 3), np.float32), pad(row2)], axis=0)


def main() -> None:
    """Render the figures (see the module docstring)."""
    import torch
    from sparsemat.engine import FrameInput, Session
    from sparsemat.settings import DEFAULT_MODEL, Settings
    from sparsemat.train.synth import find_photo_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--prior-size", type=int, default=128)
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--mattes", default=None)
    ap.add_argument("--soft-edge-guard", type=float, default=None,
                    help="the engine knob (default: its default, 0.1; the lite and lite_cs figures were made at 0)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    folder = find_photo_dir()
    assert folder is not None, "needs the shared photo folder"
    guard = {} if a.soft_edge_guard is None else {"soft_edge_guard": a.soft_edge_guard}
    session = Session(Settings(prior="rvm", model=a.model, temporal=False, device="cpu", prior_size=a.prior_size,
                               **guard))
    suffix = "" if a.model == "lite" else f"_{Path(a.model).stem}"  # lite's figure is before_after.png (the README's)
    rows = []
    for name in PHOTOS:
        rgb = _read(folder / name)
        session.reset()
        res = session.process(0, FrameInput(rgb=rgb))
        if a.mattes:
            Path(a.mattes).mkdir(parents=True, exist_ok=True)
            _write(Path(a.mattes) / f"{Path(name).stem}_prior.png", res.prior)
            _write(Path(a.mattes) / f"{Path(name).stem}_refined.png", res.alpha)
        row = figure_row(rgb, res.prior, res.alpha, crop=CROPS.get(name), model=a.model)
        _write(Path(a.out) / f"before_after_{Path(name).stem}{suffix}.png", row)
        rows.append(row)
        print(name, "band px", int(res.spatial.sum()), "mean |refined - prior|", float(np.abs(res.alpha - res.prior).mean()))
    _write(Path(a.out) / f"before_after{suffix}.png", rows[0])


if __name__ == "__main__":
    main()
