"""Training data sources: the seeded synthetic generator and user data layouts.

``--data`` strings understood by :func:`make_source`:

* ``synthetic`` (default): :func:`sparsemat.train.synth.training_batch` composites, with the photographs of
  ``photos`` (or the shared CC0 folder) as backgrounds and foreground textures.
* ``aim:FG_DIR,ALPHA_DIR,BG_DIR``: Adobe Image Matting / Distinctions-646 layout — foreground colour images in
  ``FG_DIR`` and mattes of the same file stem in ``ALPHA_DIR`` (single channel or RGB; the first channel is
  used), composited on the fly over random crops of the images in ``BG_DIR``.
* ``vm240k:ROOT[,BG_DIR]``: VideoMatte240K layout — ``ROOT/fgr/<clip>/<frame>.{jpg,png}`` and
  ``ROOT/pha/<clip>/<frame>.{jpg,png}`` (one sub-folder per clip, matching frame names); frames are sampled
  uniformly over all clips and composited over ``BG_DIR`` images (or generated/photo backgrounds).

Every source returns numpy batches in the layout of :func:`sparsemat.train.synth.training_batch` (float32,
display sRGB in [0, 1]): SHM batches ``rgb [B,3,H,W]``, ``alpha``/``prior_hr [B,1,H,W]``, ``lr_rgb [B,3,h,w]``,
``lr_prior [B,1,h,w]``, ``texture [B,1]`` (1.0 for crops of a texture-case composite; user data: 0), ``kind
[B,K]`` (one-hot of the crop's prior degradation, :data:`~sparsemat.train.synth.PRIOR_KINDS` order) (with
``whole_view``, also ``est [B,6,H,W]``: see :class:`WholeView`); LPN batches
``rgb [B,3,S,S]``, ``alpha [B,1,S,S]``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from sparsemat.engine.colour_samples import DEFAULT_LEVELS, colour_estimates
from sparsemat.engine.resize import upsample_at
from sparsemat.errors import InputError, SettingsError
from sparsemat.train import imops
from sparsemat.train.synth import (
    PRIOR_KINDS,
    SOFT_EDGE_PROB,
    degrade_prior,
    find_photo_dir,
    kind_onehot,
    load_photos,
    make_background,
    make_sample,
    torch_threads,
    training_batch,
)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr", ".bmp"}

_KEYS = ("rgb", "alpha", "prior_hr", "lr_rgb", "lr_prior", "texture", "kind")
WHOLE_VIEW_KINDS = 3
"""Degradation kinds drawn per composite with ``whole_view`` (each degrades the whole composite once; every crop
of the composite takes one of them, so the kinds stay uniform over crops)."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image with OpenImageIO: ``[H, W, C]`` float32 in [0, 1] (8/16-bit files scaled, sRGB kept).

    Raises:
        InputError: unreadable file.
    """
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise InputError(f"Cannot read image {path}: {oiio.geterror()}")
    try:
        px = inp.read_image(format="float")
    finally:
        inp.close()
    if px is None:
        raise InputError(f"Cannot read pixels of {path}")
    a = np.asarray(px, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return np.clip(np.nan_to_num(a), 0.0, 1.0)


def list_images(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` (sorted by name; not recursive)."""
    p = Path(folder)
    if not p.is_dir():
        raise InputError(f"Data folder {p} does not exist.")
    return sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)


def training_photos(folder: str | None = None, exclude: Sequence[str] = ()) -> list[np.ndarray]:
    """Photographs for synthetic backgrounds/textures, without the files named in ``exclude``.

    Args:
        folder: folder of photos; None → :func:`sparsemat.train.synth.find_photo_dir`; ``"none"`` → no photos.
        exclude: file names to leave out (e.g. photos held out for a real-photo check).

    Returns:
        list of ``[H, W, 3]`` float32 sRGB arrays (long side ≤ 2048).
    """
    if folder == "none":
        return []
    path = Path(folder) if folder is not None else find_photo_dir()
    if path is None:
        return []
    keep = [f for f in sorted(path.iterdir()) if f.suffix.lower() in IMAGE_EXTS and f.name not in set(exclude)]
    with tempfile.TemporaryDirectory() as tmp:
        for f in keep:
            (Path(tmp) / f.name).symlink_to(f.resolve())
        return load_photos(tmp)


def _cut_crops(rng: np.random.Generator, batch: int, crop: int, factor: int, kinds: Sequence[str] | None,
               fixed_kinds: bool, crops_per_sample: int,
               composite: Callable[[], tuple[np.ndarray, np.ndarray, bool]],
               whole_view: bool = False, sample_levels: tuple[float, float] = DEFAULT_LEVELS) -> dict[str, np.ndarray]:
    """``batch`` SHM items, ``crops_per_sample`` cut from each ``composite()`` (``(rgb [H,W,3], alpha [H,W],
    texture_case)``); item ``i`` uses ``kinds[i]`` with ``fixed_kinds``, else a random kind (None: any).
    ``whole_view``: each crop's prior and colour estimates come from its whole composite (:class:`WholeView`), and
    the random kinds of one composite are drawn from :data:`WHOLE_VIEW_KINDS` of them; ``sample_levels`` are those of
    its colour estimates (``SHMConfig.sample_levels`` of the model trained). Every item also carries
    ``texture [1]`` (1.0 when its composite is a texture case)."""
    out: dict[str, list[np.ndarray]] = {}
    n = 0
    with torch_threads(1):
        while n < batch:
            rgb, alpha, textured = composite()
            rgb, alpha = _at_least(rgb, alpha, crop)
            view = WholeView(rgb, alpha, factor, rng, sample_levels) if whole_view else None
            pool = list(kinds) if kinds else list(PRIOR_KINDS)
            if view is not None and not fixed_kinds:
                pool = [str(k) for k in rng.choice(pool, size=min(WHOLE_VIEW_KINDS, len(pool)), replace=False)]
            for _ in range(min(max(1, crops_per_sample), batch - n)):
                kind: str | None = None
                if fixed_kinds and kinds:
                    kind = kinds[n % len(kinds)]
                elif kinds or view is not None:
                    kind = str(rng.choice(pool))
                item = shm_crops_from(rng, rgb, alpha, crop, factor, kind, view=view)
                item["texture"] = np.array([float(textured)], dtype=np.float32)
                for k, v in item.items():
                    out.setdefault(k, []).append(v)
                n += 1
    return _stack(out)


def _at_least(rgb: np.ndarray, alpha: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, alpha)`` bilinearly upscaled so that the short side is at least ``crop`` (unchanged if it is)."""
    h, w = alpha.shape
    if min(h, w) >= crop:
        return rgb, alpha
    s = crop / min(h, w)
    size = (max(crop, round(h * s)), max(crop, round(w * s)))
    return imops.resize(rgb, size, mode="bilinear"), imops.resize(alpha, size, mode="bilinear")


class WholeView:
    """A composite seen the way the engine sees a plate, for the crops cut from it.

    The engine hands the SHM a prior of the whole plate and takes the colour estimates
    (:func:`~sparsemat.engine.colour_samples.colour_estimates`) from the whole plate at the prior's resolution.
    Crops that degrade their own piece of the matte and estimate colours from their own low-resolution view
    miss the layer that lies outside the crop (56 of 144 crops drawn like phase 3's lack one) and see
    degradations sized to the crop (noise blotches, holes). Here the matte is degraded once per kind over the
    whole composite (magnitudes in full-resolution pixels, as the yardstick), and the estimates are computed from
    the composite's low-resolution view and that degraded prior.

    Args:
        rgb: ``[H, W, 3]`` float32 display sRGB in [0, 1].
        alpha: ``[H, W]`` float32 ground truth in [0, 1].
        factor: plate → prior-resolution factor.
        rng: generator (draws the degradations' parameters).
        sample_levels: ``(foreground, background)`` levels of the colour estimates (the trained model's).
    """

    def __init__(self, rgb: np.ndarray, alpha: np.ndarray, factor: int, rng: np.random.Generator,
                 sample_levels: tuple[float, float] = DEFAULT_LEVELS) -> None:
        self.alpha = alpha
        self.size = (int(alpha.shape[0]), int(alpha.shape[1]))
        self.lr_size = (max(1, round(self.size[0] / factor)), max(1, round(self.size[1] / factor)))
        self.lr_rgb = torch.from_numpy(imops.resize(rgb, self.lr_size, mode="aa").transpose(2, 0, 1).copy())[None]
        self.rng = rng
        self.sample_levels = sample_levels
        self._kinds: dict[str, tuple[np.ndarray, torch.Tensor]] = {}

    def prior(self, kind: str) -> tuple[np.ndarray, torch.Tensor]:
        """The whole composite's degraded matte ``[H, W]`` (full resolution, before the prior's downsampling)
        and its colour estimates ``[1, 6, h, w]`` at the prior's resolution, made once per ``kind``."""
        if kind not in self._kinds:
            degraded = degrade_prior(self.alpha, self.rng, kind, scale=1.0)
            lr_prior = torch.from_numpy(imops.resize(degraded, self.lr_size, mode="aa"))[None, None]
            self._kinds[kind] = degraded, colour_estimates(self.lr_rgb, lr_prior.clamp(0.0, 1.0), self.sample_levels)
        return self._kinds[kind]

    def estimates_at(self, kind: str, y0: int, x0: int, crop: int) -> np.ndarray:
        """The colour estimates upsampled to full resolution over the crop at ``(y0, x0)``: ``[6, crop, crop]``."""
        ys, xs = torch.meshgrid(torch.arange(y0, y0 + crop), torch.arange(x0, x0 + crop), indexing="ij")
        coords = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=1)
        return upsample_at(self.prior(kind)[1], coords, self.size).reshape(6, crop, crop).numpy()


def _stack(items: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(np.clip(np.stack(v), 0.0, 1.0).astype(np.float32)) for k, v in items.items()}


def shm_crops_from(rng: np.random.Generator, rgb: np.ndarray, alpha: np.ndarray, crop: int, factor: int,
                   kind: str | None, centre_prob: float = 0.85, view: WholeView | None = None) -> dict[str, np.ndarray]:
    """One SHM training item from a full composite, as :func:`~sparsemat.train.synth.training_batch` builds it.

    Args:
        rng: generator.
        rgb: ``[H, W, 3]`` float32 sRGB plate (H, W ≥ ``crop``; smaller images are upscaled first).
        alpha: ``[H, W]`` float32 ground-truth matte.
        crop: crop side (multiple of ``factor``).
        factor: plate → prior-resolution factor.
        kind: prior degradation (None draws one; required with ``view``).
        view: the composite's :class:`WholeView` (same ``rgb``/``alpha``): the crop's prior is cut from the whole
            composite's degraded matte and the item gains ``est``; None degrades the crop's own matte.

    Returns:
        ``rgb [3,c,c]``, ``alpha [1,c,c]``, ``prior_hr [1,c,c]``, ``lr_rgb [3,l,l]``, ``lr_prior [1,l,l]``,
        ``kind [K]`` (one-hot of the degradation, :func:`~sparsemat.train.synth.kind_onehot`) with
        ``l = crop // factor``; with ``view`` also ``est [6,c,c]`` (``F̂``, ``B̂`` from the whole view).
    """
    rgb, alpha = _at_least(rgb, alpha, crop)
    h, w = alpha.shape
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    if rng.random() < centre_prob:
        ys, xs = np.nonzero((alpha > 0.05) & (alpha < 0.95))
        if ys.size:
            i = int(rng.integers(ys.size))
            cy, cx = int(ys[i]), int(xs[i])
    y0 = int(np.clip(cy - crop // 2, 0, h - crop))
    x0 = int(np.clip(cx - crop // 2, 0, w - crop))
    r = rgb[y0:y0 + crop, x0:x0 + crop]
    a = alpha[y0:y0 + crop, x0:x0 + crop]
    flip = rng.random() < 0.5
    if flip:
        r, a = r[:, ::-1], a[:, ::-1]
    r, a = np.ascontiguousarray(r), np.ascontiguousarray(a)
    lr = crop // factor
    extra: dict[str, np.ndarray] = {}
    if view is None:
        if kind is None:  # drawn as degrade_prior would draw it (same generator call), so the item can name it
            kind = str(rng.choice(PRIOR_KINDS))
        degraded = degrade_prior(a, rng, kind)
    else:
        if kind is None:
            raise ValueError("shm_crops_from: a whole view needs a degradation kind")
        degraded = view.prior(kind)[0][y0:y0 + crop, x0:x0 + crop]
        est = view.estimates_at(kind, y0, x0, crop)
        if flip:
            degraded, est = degraded[:, ::-1], est[:, :, ::-1]
        degraded = np.ascontiguousarray(degraded)
        extra["est"] = np.ascontiguousarray(est)
    lr_prior = imops.resize(degraded, (lr, lr), mode="area")
    return {
        "rgb": r.transpose(2, 0, 1),
        "alpha": a[None],
        "prior_hr": imops.resize(lr_prior, (crop, crop), mode="bilinear")[None],
        "lr_rgb": imops.resize(r, (lr, lr), mode="area").transpose(2, 0, 1),
        "lr_prior": lr_prior[None],
        "kind": kind_onehot(kind),
        **extra,
    }


class SyntheticSource:
    """The seeded synthetic generator (:mod:`sparsemat.train.synth`).

    Args:
        photos: backgrounds/textures (``[H, W, 3]`` float32 sRGB); empty → generated textures.
    """

    def __init__(self, photos: Sequence[np.ndarray]) -> None:
        self.photos = list(photos) or None

    def shm_batch(self, rng: np.random.Generator, batch: int, crop: int, factor: int,
                  kinds: Sequence[str] | None, fixed_kinds: bool = False,
                  sample_scale: tuple[float, ...] | None = None, crops_per_sample: int = 1,
                  soft_edge_prob: float = SOFT_EDGE_PROB, whole_view: bool = False,
                  texture_case_prob: float = 0.0, sample_levels: tuple[float, float] = DEFAULT_LEVELS,
                  texture_cases: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """SHM crops (see the module docstring); ``fixed_kinds``: item i uses ``kinds[i]``.

        With ``sample_scale``/``crops_per_sample``/``whole_view`` set, composites of ``crop·U(sample_scale)`` px
        (aspect 1–1.6) are drawn and ``crops_per_sample`` crops cut from each (:func:`shm_crops_from`; with
        ``whole_view`` through the composite's :class:`WholeView`); otherwise
        :func:`~sparsemat.train.synth.training_batch` builds the batch. ``soft_edge_prob``: chance of a
        defocused body edge per composite; ``texture_case_prob``: chance of a texture case
        per composite, drawn from ``texture_cases`` (None: :data:`~sparsemat.train.synth.TEXTURE_CASES`);
        ``sample_levels``: those of the whole views' colour estimates.
        """
        if sample_scale is not None or crops_per_sample > 1 or whole_view:
            lo, hi = (sample_scale or (1.0, 1.6))[:2]

            def composite() -> tuple[np.ndarray, np.ndarray, bool]:
                short = int(round(crop * rng.uniform(lo, hi)))
                long = int(round(short * rng.uniform(1.0, 1.6)))
                smp = make_sample(rng, (short, long) if rng.random() < 0.5 else (long, short), self.photos,
                                  soft_edge_prob=soft_edge_prob, texture_case_prob=texture_case_prob,
                                  texture_cases=texture_cases)
                return smp.rgb, smp.alpha, smp.texture_case

            return _cut_crops(rng, batch, crop, factor, kinds, fixed_kinds, crops_per_sample, composite, whole_view,
                              sample_levels)
        if fixed_kinds and kinds:
            parts = [training_batch(rng, 1, crop, self.photos, lr_factor=factor, kinds=[kinds[i % len(kinds)]],
                                    soft_edge_prob=soft_edge_prob, texture_case_prob=texture_case_prob,
                                    texture_cases=texture_cases)
                     for i in range(batch)]
            return {k: np.concatenate([p[k].numpy() for p in parts]) for k in _KEYS}
        b = training_batch(rng, batch, crop, self.photos, lr_factor=factor, kinds=kinds, soft_edge_prob=soft_edge_prob,
                           texture_case_prob=texture_case_prob, texture_cases=texture_cases)
        return {k: b[k].numpy() for k in _KEYS}

    def lpn_batch(self, rng: np.random.Generator, batch: int, size: int,
                  kinds: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Whole composites of ``size²`` px: ``rgb [B,3,S,S]``, ``alpha [B,1,S,S]``."""
        out: dict[str, list[np.ndarray]] = {"rgb": [], "alpha": []}
        with torch_threads(1):
            for _ in range(batch):
                s = make_sample(rng, (size, size), self.photos)
                flip = rng.random() < 0.5
                rgb, a = (s.rgb[:, ::-1], s.alpha[:, ::-1]) if flip else (s.rgb, s.alpha)
                out["rgb"].append(rgb.transpose(2, 0, 1))
                out["alpha"].append(a[None])
        return _stack(out)


class _CompositeSource:
    """Base of the user layouts: ``pair(rng)`` gives a foreground colour and its matte; composited over
    a background drawn from ``bg_files`` (random crop/rescale) or generated/photo backgrounds."""

    def __init__(self, bg_files: Sequence[Path], photos: Sequence[np.ndarray]) -> None:
        self.bg_files = list(bg_files)
        self.photos = list(photos) or None

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def composite(self, rng: np.random.Generator, min_side: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb [H,W,3], alpha [H,W])`` float32, ``I = αF + (1−α)B`` in display sRGB, short side ≥ ``min_side``."""
        fg, alpha = self.pair(rng)
        h, w = alpha.shape
        if min(h, w) < min_side:
            s = min_side / min(h, w)
            h, w = max(min_side, round(h * s)), max(min_side, round(w * s))
            fg, alpha = imops.resize(fg, (h, w), mode="bilinear"), imops.resize(alpha, (h, w), mode="bilinear")
        if self.bg_files:
            bg_img = read_image(self.bg_files[int(rng.integers(len(self.bg_files)))])
            bg_img = np.repeat(bg_img, 3, axis=2) if bg_img.shape[2] < 3 else bg_img[..., :3]
            bg = make_background(rng, (h, w), [bg_img])
        else:
            bg = make_background(rng, (h, w), self.photos)
        a3 = alpha[..., None]
        rgb = np.clip(a3 * fg + (1.0 - a3) * bg, 0.0, 1.0).astype(np.float32)
        return rgb, alpha

    def shm_batch(self, rng: np.random.Generator, batch: int, crop: int, factor: int,
                  kinds: Sequence[str] | None, fixed_kinds: bool = False,
                  sample_scale: tuple[float, ...] | None = None, crops_per_sample: int = 1,
                  soft_edge_prob: float = SOFT_EDGE_PROB, whole_view: bool = False,
                  texture_case_prob: float = 0.0, sample_levels: tuple[float, float] = DEFAULT_LEVELS,
                  texture_cases: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """SHM crops from composites (see the module docstring); ``crops_per_sample`` crops are cut from each
        composite (through its :class:`WholeView` with ``whole_view``). ``sample_scale``, ``soft_edge_prob``,
        ``texture_case_prob`` and ``texture_cases`` shape synthetic composites only: user composites keep their own size and edges;
        ``sample_levels``: those of the whole views' colour estimates."""
        return _cut_crops(rng, batch, crop, factor, kinds, fixed_kinds, crops_per_sample,
                          lambda: (*self.composite(rng, crop), False), whole_view, sample_levels)

    def lpn_batch(self, rng: np.random.Generator, batch: int, size: int,
                  kinds: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Composites resized to ``size²``: ``rgb [B,3,S,S]``, ``alpha [B,1,S,S]``."""
        out: dict[str, list[np.ndarray]] = {"rgb": [], "alpha": []}
        with torch_threads(1):
            for _ in range(batch):
                rgb, alpha = self.composite(rng, 1)
                rgb = imops.resize(rgb, (size, size), mode="aa")
                alpha = imops.resize(alpha, (size, size), mode="aa")
                if rng.random() < 0.5:
                    rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
                out["rgb"].append(rgb.transpose(2, 0, 1))
                out["alpha"].append(alpha[None])
        return _stack(out)


def _colour(img: np.ndarray) -> np.ndarray:
    return np.repeat(img, 3, axis=2) if img.shape[2] < 3 else img[..., :3]


class AimSource(_CompositeSource):
    """Adobe Image Matting / Distinctions-646 layout (``fg/`` + ``alpha/`` of matching stems, ``bg/``).

    Raises:
        InputError: missing folders, no foregrounds, or a foreground without a matte.
    """

    def __init__(self, fg_dir: str | Path, alpha_dir: str | Path, bg_dir: str | Path | None,
                 photos: Sequence[np.ndarray] = ()) -> None:
        fgs = list_images(fg_dir)
        alphas = {f.stem: f for f in list_images(alpha_dir)}
        if not fgs:
            raise InputError(f"No foreground images in {fg_dir}.")
        missing = [f.name for f in fgs if f.stem not in alphas]
        if missing:
            raise InputError(f"No matte in {alpha_dir} for foreground(s): {', '.join(missing[:5])}.")
        self.items = [(f, alphas[f.stem]) for f in fgs]
        super().__init__(list_images(bg_dir) if bg_dir else [], photos)

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random ``(fg [H,W,3], alpha [H,W])`` pair."""
        f, a = self.items[int(rng.integers(len(self.items)))]
        fg, alpha = _colour(read_image(f)), read_image(a)[..., 0]
        if fg.shape[:2] != alpha.shape:
            raise InputError(f"{f.name} is {fg.shape[1]}x{fg.shape[0]} but its matte is {alpha.shape[1]}x{alpha.shape[0]}.")
        return fg, alpha


class VideoMatteSource(_CompositeSource):
    """VideoMatte240K layout (``ROOT/fgr/<clip>/*`` and ``ROOT/pha/<clip>/*`` with matching frame names).

    Raises:
        InputError: missing ``fgr``/``pha`` folders, no frames, or a frame without a matte.
    """

    def __init__(self, root: str | Path, bg_dir: str | Path | None = None, photos: Sequence[np.ndarray] = ()) -> None:
        r = Path(root)
        if not (r / "fgr").is_dir() or not (r / "pha").is_dir():
            raise InputError(f"{r} is not a VideoMatte240K-style folder (needs fgr/ and pha/ sub-folders).")
        self.items: list[tuple[Path, Path]] = []
        for clip in sorted(p for p in (r / "fgr").iterdir() if p.is_dir()):
            phas = {f.stem: f for f in list_images(r / "pha" / clip.name)} if (r / "pha" / clip.name).is_dir() else {}
            for f in list_images(clip):
                if f.stem not in phas:
                    raise InputError(f"No matte pha/{clip.name}/{f.stem}.* for fgr/{clip.name}/{f.name}.")
                self.items.append((f, phas[f.stem]))
        if not self.items:
            raise InputError(f"No frames under {r / 'fgr'}.")
        super().__init__(list_images(bg_dir) if bg_dir else [], photos)

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random frame's ``(fg [H,W,3], alpha [H,W])``."""
        f, a = self.items[int(rng.integers(len(self.items)))]
        return _colour(read_image(f)), read_image(a)[..., 0]


def make_source(data: str, photos: str | None = None, exclude: Sequence[str] = ()) -> SyntheticSource | _CompositeSource:
    """Parse a ``--data`` string (see the module docstring) into a source.

    Raises:
        SettingsError: unknown scheme; InputError: bad folders.
    """
    scheme, _, rest = data.partition(":")
    if scheme == "synthetic":
        return SyntheticSource(training_photos(photos, exclude))
    if scheme == "aim":
        parts = [p for p in rest.split(",") if p]
        if len(parts) not in (2, 3):
            raise SettingsError("--data", data, "aim:FG_DIR,ALPHA_DIR[,BG_DIR] needs two or three comma-separated folders")
        bg = parts[2] if len(parts) == 3 else None
        src: _CompositeSource = AimSource(parts[0], parts[1], bg)  # validates the layout before photos load
    elif scheme == "vm240k":
        parts = [p for p in rest.split(",") if p]
        if len(parts) not in (1, 2):
            raise SettingsError("--data", data, "vm240k:ROOT[,BG_DIR] needs the dataset root (and optionally backgrounds)")
        bg = parts[1] if len(parts) == 2 else None
        src = VideoMatteSource(parts[0], bg)
    else:
        raise SettingsError("--data", data, "use synthetic, aim:FG,ALPHA,BG or vm240k:ROOT[,BG]")
    if not bg:
        src.photos = training_photos(photos, exclude) or None
    return src
