"""Seeded synthetic matting data: composites, degraded priors, video sequences and SHM training crops.

What a sample is made of (each part is optional and drawn at random):

* **body**: 1–3 anti-aliased radial shapes (ellipses, harmonic blobs, star polygons) with holes, a sharp
  (1 px ramp) or defocused (2–24 px ramp) edge;
* **strands**: hair or fur, many thin curved strands 0.25–3 px wide at 30–100 % opacity that grow outward
  from one side of the body, taper and fade toward the tip. Widths are in pixels at every resolution and
  counts/lengths scale with the frame, so at 4K they stay fine hair rather than thick ropes;
* **fabric**: a semi-transparent woven sheet behind the body; **smoke**: a soft noise-shaped wisp;
* **motion blur** of the whole subject along a random direction.

Colours come from colour-jittered crops of real photographs when ``textures``/``backgrounds`` are given
(see :func:`load_photos`) and from generated textures (fractal noise, gradients, stripes) otherwise, so
everything runs from a fresh clone without any data.

Colour space and compositing: ``I = alpha * F + (1 - alpha) * B`` is evaluated **directly in display sRGB**
by default (as the Adobe/DIM, HHM and RVM composites are), so the equation holds exactly for the returned
``rgb``, ``fg`` and ``bg`` and the SparseMat composition loss is consistent. ``linear=True`` composites in
linear light (physically right for sub-pixel hair and motion blur) and encodes to sRGB afterwards; the
returned ``fg``/``bg`` are still sRGB, and the equation then holds only after decoding them to linear.

Every image is float32 in [0, 1]; colour images are ``[H, W, 3]`` display sRGB, mattes ``[H, W]``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sparsemat.train import imops

RngLike = np.random.Generator | int | None

PRIOR_KINDS: tuple[str, ...] = (
    "down4",
    "down8",
    "down16",
    "blur",
    "dilate",
    "erode",
    "noise",
    "holes",
    "down8_blur",
    "combo",
)
"""Named prior degradations understood by :func:`degrade_prior` (evaluation reports per kind)."""


def kind_onehot(kind: str) -> np.ndarray:
    """``[len(PRIOR_KINDS)]`` float32 one-hot of a prior degradation ``kind`` (a training batch's ``kind`` entry,
    :data:`PRIOR_KINDS` order), so a loss can treat crops by how their prior was degraded."""
    out = np.zeros(len(PRIOR_KINDS), dtype=np.float32)
    out[PRIOR_KINDS.index(kind)] = 1.0
    return out


PHOTO_DIR_ENV = "SPARSEMAT_PHOTO_DIR"

SOFT_EDGE_PROB = 0.25
"""Default chance that a synthetic body has a defocused (soft) edge instead of a sharp one."""


@dataclass
class Sample:
    """One composite.

    Attributes:
        rgb: ``[H, W, 3]`` float32 display sRGB in [0, 1], the plate.
        alpha: ``[H, W]`` float32 in [0, 1], the ground-truth matte.
        fg: ``[H, W, 3]`` float32 display sRGB in [0, 1], foreground colour (defined everywhere).
        bg: ``[H, W, 3]`` float32 display sRGB in [0, 1], background plate.
        texture_case: True when the composite is one of :data:`TEXTURE_CASES` (:func:`make_sample`).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    texture_case: bool = False


def as_rng(rng: RngLike) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a generator (returned as is) or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# ----------------------------------------------------------------------------------------------- photos
def find_photo_dir() -> Path | None:
    """The folder of CC0 photographs: ``$SPARSEMAT_PHOTO_DIR``, else ``../shared/data/backgrounds``
    next to the repository or working directory; None when there is none (fresh clone)."""
    env = os.environ.get(PHOTO_DIR_ENV)
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[3]
    candidates += [repo.parent / "shared/data/backgrounds", Path.cwd().parent / "shared/data/backgrounds"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def load_photos(folder: str | Path | None = None, max_side: int | None = 2048) -> list[np.ndarray]:
    """Read every ``.jpg/.jpeg/.png/.tif/.exr`` in ``folder`` with OpenImageIO.

    Args:
        folder: the folder; None uses :func:`find_photo_dir` (an empty list when there is none).
        max_side: downscale (antialiased) so the long side is at most this; None keeps native size.
            2048 keeps training crops cheap; use None for native-UHR 4K/6K test plates.

    Returns:
        list of ``[H, W, 3]`` float32 arrays, display sRGB in [0, 1] (files are taken as sRGB-encoded).
    """
    import OpenImageIO as oiio

    path = Path(folder) if folder is not None else find_photo_dir()
    if path is None:
        return []
    out: list[np.ndarray] = []
    for f in sorted(path.iterdir()):
        if f.suffix.lower() not in {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr"}:
            continue
        inp = oiio.ImageInput.open(str(f))
        if inp is None:
            continue
        try:
            px = inp.read_image(format="float")
        finally:
            inp.close()
        if px is None:
            continue
        px = np.asarray(px, dtype=np.float32)
        if px.ndim == 2:
            px = px[..., None]
        px = np.repeat(px, 3, axis=2) if px.shape[2] < 3 else px[..., :3]
        h, w = px.shape[:2]
        if max_side is not None and max(h, w) > max_side:
            s = max_side / max(h, w)
            px = imops.resize(px, (max(1, round(h * s)), max(1, round(w * s))), mode="aa")
        out.append(np.clip(px, 0.0, 1.0))
    return out


# ---------------------------------------------------------------------------------------------- textures
def fbm(rng: np.random.Generator, size: tuple[int, int], base_cells: float = 3.0, octaves: int | None = None,
        persistence: float = 0.55) -> np.ndarray:
    """Fractal value noise: ``[H, W]`` float32 in [0, 1], bilinear octaves of random grids (no tiling).

    Octaves are summed at most 1024 px on the long side, then upsampled once (bilinear) to ``size``.
    """
    full = size
    m0 = max(size)
    if m0 > 1024:
        size = (max(2, round(size[0] * 1024 / m0)), max(2, round(size[1] * 1024 / m0)))
    h, w = size
    m = max(h, w)
    if octaves is None:
        octaves = max(3, min(8, int(math.log2(max(m / base_cells, 2.0) / 4.0)) + 1))
    acc = torch.zeros((1, 1, h, w))
    amp, total = 1.0, 0.0
    cells = base_cells
    for _ in range(octaves):
        gh = max(2, int(round(cells * h / m)) + 2)
        gw = max(2, int(round(cells * w / m)) + 2)
        grid = torch.from_numpy(rng.random((1, 1, gh, gw), dtype=np.float32))
        acc += amp * F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        total += amp
        amp *= persistence
        cells *= 2.0
    out = acc[0, 0].numpy() / total
    lo, hi = float(out.min()), float(out.max())
    out = ((out - lo) / max(hi - lo, 1e-6)).astype(np.float32)
    return imops.resize(out, full, mode="bilinear") if full != size else out


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.random(3).astype(np.float32) ** rng.uniform(0.5, 2.0)


def generated_texture(rng: np.random.Generator, size: tuple[int, int], kind: int | None = None) -> np.ndarray:
    """A procedural colour texture ``[H, W, 3]`` float32 display sRGB in [0, 1].

    One of (``kind``; None draws one): 0 two-colour fractal noise, 1 a linear gradient with noise, 2 rotated
    stripes with noise. Above 2048 px on the long side the texture is drawn at 2048 and upsampled (bilinear).
    """
    if max(size) > 2048:
        f = 2048 / max(size)
        small = (max(2, round(size[0] * f)), max(2, round(size[1] * f)))
        return np.clip(imops.resize(generated_texture(rng, small, kind), size, mode="bilinear"), 0.0, 1.0)
    h, w = size
    c0, c1 = _random_colour(rng), _random_colour(rng)
    if kind is None:
        kind = int(rng.integers(3))
    if kind == 0:
        t = fbm(rng, size, base_cells=rng.uniform(2, 12))
    else:
        ys = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / max(h, w)
        xs = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / max(h, w)
        a = rng.uniform(0, 2 * math.pi)
        u = math.cos(a) * xs + math.sin(a) * ys
        if kind == 1:
            t = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
        else:
            freq = rng.uniform(3, 60)
            t = 0.5 + 0.5 * np.sin(2 * math.pi * freq * u + rng.uniform(0, 6.3))
            if rng.random() < 0.5:
                t = (t > 0.5).astype(np.float32) * 0.8 + 0.2 * t
        t = 0.8 * t + 0.2 * fbm(rng, size, base_cells=rng.uniform(4, 30))
    t = np.asarray(t, dtype=np.float32)
    tex = c0[None, None, :] + (c1 - c0)[None, None, :] * t[..., None]
    return np.clip(tex, 0.0, 1.0).astype(np.float32)


def photo_crop(rng: np.random.Generator, photo: np.ndarray, size: tuple[int, int],
               scale: tuple[float, float] = (0.35, 1.0)) -> np.ndarray:
    """A random crop of ``photo`` resized to ``size``, with a random flip.

    ``scale`` is the output/native pixel ratio range (1 = native pixels, 0.35 = shrunk ~3x); when the
    photo is too small the crop is the largest one with the right aspect, upsampled.

    Returns ``[H, W, 3]`` float32 display sRGB in [0, 1].
    """
    h, w = size
    ph, pw = photo.shape[:2]
    s = rng.uniform(*scale)
    ch, cw = h / s, w / s
    fit = min(ph / ch, pw / cw, 1.0)
    ch, cw = max(1, int(ch * fit)), max(1, int(cw * fit))
    y0 = int(rng.integers(0, ph - ch + 1))
    x0 = int(rng.integers(0, pw - cw + 1))
    crop = photo[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.clip(imops.resize(np.ascontiguousarray(crop), (h, w)), 0.0, 1.0)


def jitter_colour(rng: np.random.Generator, img: np.ndarray, push: float | None = None) -> np.ndarray:
    """Colour-jitter an sRGB texture: gain, gamma, saturation, channel mix, and a pull toward one colour.

    ``push`` is the strength of the pull toward a random colour (None draws 0–0.8, often 0).
    """
    out = img * rng.uniform(0.6, 1.3, size=3).astype(np.float32)
    out = np.clip(out, 0.0, 1.0) ** np.float32(rng.uniform(0.7, 1.4))
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * np.float32(rng.uniform(0.3, 1.5))
    if rng.random() < 0.3:
        out = out[..., rng.permutation(3)]
    if push is None:
        push = float(rng.uniform(0.2, 0.8)) if rng.random() < 0.5 else 0.0
    if push > 0:
        out = out * (1 - push) + push * _random_colour(rng)[None, None, :] * (0.5 + grey)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _texture(rng: np.random.Generator, size: tuple[int, int], photos: Sequence[np.ndarray] | None,
             p_photo: float = 0.8, jitter: bool = True) -> np.ndarray:
    if photos and rng.random() < p_photo:
        tex = photo_crop(rng, photos[int(rng.integers(len(photos)))], size)
        return jitter_colour(rng, tex) if jitter else tex
    return generated_texture(rng, size)


def make_background(rng: RngLike, size: tuple[int, int], backgrounds: Sequence[np.ndarray] | None = None,
                    defocus_prob: float = 0.3) -> np.ndarray:
    """A background plate ``[H, W, 3]`` float32 display sRGB in [0, 1]: a photo crop/rescale when
    ``backgrounds`` are given (90 %), a generated texture otherwise; sometimes defocused."""
    rng = as_rng(rng)
    bg = _texture(rng, size, backgrounds, p_photo=0.9, jitter=False)
    if rng.random() < defocus_prob:
        bg = imops.gaussian_blur(bg, float(rng.uniform(1.0, 8.0)) * min(size) / 512.0)
    return bg


# ------------------------------------------------------------------------------------------------- shapes
@dataclass
class _Radial:
    """A radial shape in subject-local pixel coordinates: ellipse, harmonic blob or star."""

    cx: float
    cy: float
    ax: float
    ay: float
    rot: float
    star_k: int = 0  # > 0: star with star_k points, inner radius r_in
    r_in: float = 1.0
    harm_k: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    harm_a: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    harm_p: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    phase: float = 0.0

    def extent(self) -> float:
        return max(self.ax, self.ay) * (1.0 + float(np.abs(self.harm_a).sum()))


def _random_radial(rng: np.random.Generator, cx: float, cy: float, radius: float) -> _Radial:
    ratio = rng.uniform(0.45, 1.0)
    ax, ay = radius, radius * ratio
    shape = _Radial(cx, cy, ax, ay, float(rng.uniform(0, math.pi)))
    kind = rng.choice(3, p=[0.3, 0.45, 0.25])
    if kind == 1:  # harmonic blob
        n = int(rng.integers(1, 5))
        shape.harm_k = rng.integers(2, 8, size=n).astype(np.float32)
        shape.harm_a = (rng.uniform(0.03, 0.22, size=n) / n ** 0.5).astype(np.float32)
        shape.harm_p = rng.uniform(0, 2 * math.pi, size=n).astype(np.float32)
    elif kind == 2:  # star polygon
        shape.star_k = int(rng.integers(3, 10))
        shape.r_in = float(rng.uniform(0.35, 0.8))
        shape.phase = float(rng.uniform(0, 1))
    return shape


@dataclass
class _Pose:
    """Rigid subject motion: ``world = c + (dx, dy) + R(angle) (local - c)``."""

    cx: float
    cy: float
    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0

    def is_identity(self) -> bool:
        return self.dx == 0.0 and self.dy == 0.0 and self.angle == 0.0

    def to_world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.angle), math.sin(self.angle)
        xr, yr = x - self.cx, y - self.cy
        return self.cx + self.dx + c * xr - s * yr, self.cy + self.dy + s * xr + c * yr

    def to_local(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(self.angle), math.sin(self.angle)
        xr, yr = x - self.cx - self.dx, y - self.cy - self.dy
        return self.cx + c * xr + s * yr, self.cy - s * xr + c * yr


def _render_radial(shape: _Radial, pose: _Pose, size: tuple[int, int], softness: float) -> np.ndarray:
    """Coverage ``[H, W]`` float32 of one radial shape; the edge ramp is ``softness`` px wide."""
    h, w = size
    out = np.zeros((h, w), np.float32)
    wx, wy = pose.to_world(np.array(shape.cx), np.array(shape.cy))
    e = shape.extent() + softness + 3.0
    x0, x1 = max(0, int(wx - e)), min(w, int(wx + e) + 1)
    y0, y1 = max(0, int(wy - e)), min(h, int(wy + e) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32) + 0.5, np.arange(y0, y1, dtype=np.float32) + 0.5)
    lx, ly = pose.to_local(gx, gy)
    dx, dy = lx - shape.cx, ly - shape.cy
    c, s = math.cos(shape.rot), math.sin(shape.rot)
    u = (c * dx + s * dy) / shape.ax
    v = (-s * dx + c * dy) / shape.ay
    rho = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)
    if shape.star_k > 0:
        t = np.mod(shape.star_k * theta / (2 * math.pi) + shape.phase, 1.0)
        r = shape.r_in + (1.0 - shape.r_in) * (1.0 - 2.0 * np.abs(t - 0.5))
    else:
        r = np.ones_like(rho)
        for k, a, p in zip(shape.harm_k, shape.harm_a, shape.harm_p, strict=True):
            r = r + a * np.cos(k * theta + p)
    g = (r - rho).astype(np.float32)
    gyy, gxx = np.gradient(g)
    gn = np.sqrt(gxx * gxx + gyy * gyy)
    sdf = g / np.maximum(gn, 1e-4)  # signed distance to the edge in px (inside > 0)
    cov = np.clip(0.5 + sdf / max(softness, 1.0), 0.0, 1.0)
    cov[g > 0.35] = 1.0  # deep inside (avoids the atan2 singularity at the centre)
    out[y0:y1, x0:x1] = cov
    return out


# ------------------------------------------------------------------------------------------------ strands
@dataclass
class _Strands:
    """Per-strand parameters (all ``[S]`` float32, subject-local pixel coordinates at rest)."""

    root_x: np.ndarray
    root_y: np.ndarray
    theta0: np.ndarray
    length: np.ndarray
    width: np.ndarray
    opacity: np.ndarray
    bend: np.ndarray
    wig_amp: np.ndarray
    wig_freq: np.ndarray
    wig_phase: np.ndarray
    sway_amp: np.ndarray
    sway_phase: np.ndarray
    sway_freq: float = 0.05


def _make_strands(rng: np.random.Generator, body: np.ndarray, pose: _Pose, m: float) -> _Strands | None:
    """Roots on the edge band of ``body`` (``[H, W]`` at rest), on one side of the subject."""
    h, w = body.shape
    band_y, band_x = np.nonzero((body > 0.03) & (body < 0.97))
    if band_x.size == 0:
        return None
    bx = band_x.astype(np.float32) + 0.5
    by = band_y.astype(np.float32) + 0.5
    ang = np.arctan2(by - pose.cy, bx - pose.cx)
    centre, half = rng.uniform(-math.pi, math.pi), rng.uniform(0.6, math.pi)
    sel = np.abs(np.angle(np.exp(1j * (ang - centre)))) <= half
    if sel.sum() < 4:
        sel[:] = True
    bx, by = bx[sel], by[sel]
    fur = rng.random() < 0.35
    res = m / 512.0
    n = int((rng.uniform(150, 600) if fur else rng.uniform(20, 300)) * res * (half / math.pi) ** 0.5)
    n = max(n, 8)
    pick = rng.integers(0, bx.size, size=n)
    rx, ry = bx[pick] + rng.uniform(-0.5, 0.5, n), by[pick] + rng.uniform(-0.5, 0.5, n)
    # outward normal from a low-resolution, blurred copy of the body
    d = max(1, int(min(h, w) // 192))
    small = imops.gaussian_blur(imops.resize(body, (max(2, h // d), max(2, w // d)), mode="aa"), 1.5)
    gy, gx = np.gradient(small)
    iy = np.clip((ry / d).astype(int), 0, small.shape[0] - 1)
    ix = np.clip((rx / d).astype(int), 0, small.shape[1] - 1)
    nx, ny = -gx[iy, ix], -gy[iy, ix]
    norm = np.hypot(nx, ny)
    fallback = norm < 1e-6
    nx = np.where(fallback, rx - pose.cx, nx)
    ny = np.where(fallback, ry - pose.cy, ny)
    theta0 = np.arctan2(ny, nx) + rng.normal(0, rng.uniform(0.15, 0.7), n)
    inset = rng.uniform(0, 3.0 * max(res, 1.0), n)
    rx, ry = rx - np.cos(theta0) * inset, ry - np.sin(theta0) * inset
    length = (rng.uniform(0.008, 0.045, n) if fur else rng.uniform(0.03, 0.25, n)) * m
    f32 = np.float32
    return _Strands(
        root_x=rx.astype(f32), root_y=ry.astype(f32), theta0=theta0.astype(f32), length=length.astype(f32),
        width=np.exp(rng.uniform(math.log(0.25), math.log(3.0), n)).astype(f32),
        opacity=rng.uniform(0.3, 1.0, n).astype(f32),
        bend=rng.normal(0, rng.uniform(0.2, 1.2), n).astype(f32),
        wig_amp=(rng.uniform(0, 0.25, n) * (rng.random(n) < 0.5)).astype(f32),
        wig_freq=rng.uniform(0.5, 3.0, n).astype(f32), wig_phase=rng.uniform(0, 6.3, n).astype(f32),
        sway_amp=rng.uniform(0.02, 0.25, n).astype(f32), sway_phase=rng.uniform(0, 6.3, n).astype(f32),
        sway_freq=float(rng.uniform(0.02, 0.1)),
    )


_WIDTH_KERNELS: tuple[tuple[float, tuple[float, ...]], ...] = (
    (1.2, (1.0,)),
    (2.2, (0.25, 0.5, 0.25)),
    (99.0, (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
)


def _render_strands(st: _Strands, pose: _Pose, size: tuple[int, int], t: float, step: float = 0.7) -> np.ndarray:
    """Strand coverage ``[H, W]`` float32 in [0, 1].

    Each strand is sampled every ``step`` px; each sample splats ``width * step * opacity`` bilinearly
    (so a strand of width <= 1 px gets box-filtered coverage), then per width class a small separable
    filter widens the profile; overlapping strands add and saturate at 1.
    """
    h, w = size
    n_pts = int(math.ceil(float(st.length.max()) / step)) + 1
    s = torch.arange(n_pts, dtype=torch.float32)[None, :] * step  # [1, P]
    length = torch.from_numpy(st.length)[:, None]
    frac = s / length
    sway = torch.from_numpy(st.sway_amp * np.sin(2 * math.pi * st.sway_freq * t + st.sway_phase))[:, None]
    theta = (torch.from_numpy(st.theta0)[:, None] + torch.from_numpy(st.bend)[:, None] * frac
             + torch.from_numpy(st.wig_amp)[:, None]
             * torch.sin(2 * math.pi * torch.from_numpy(st.wig_freq)[:, None] * frac
                         + torch.from_numpy(st.wig_phase)[:, None])
             + sway * frac * frac)
    px = torch.from_numpy(st.root_x)[:, None] + torch.cumsum(torch.cos(theta) * step, dim=1) - step
    py = torch.from_numpy(st.root_y)[:, None] + torch.cumsum(torch.sin(theta) * step, dim=1) - step
    keep = frac < 1.0
    taper = (1.0 - 0.75 * frac.clamp(max=1.0) ** 2)
    width = torch.from_numpy(st.width)[:, None] * taper
    weight = width * step * torch.from_numpy(st.opacity)[:, None] * (1.0 - 0.5 * frac.clamp(max=1.0))
    c, sn = math.cos(pose.angle), math.sin(pose.angle)
    xr, yr = px - pose.cx, py - pose.cy
    wx = pose.cx + pose.dx + c * xr - sn * yr
    wy = pose.cy + pose.dy + sn * xr + c * yr
    total = torch.zeros(h, w)
    lo = 0.0
    for hi, kern in _WIDTH_KERNELS:
        sel = keep & (width > lo) & (width <= hi)
        lo = hi
        if not bool(sel.any()):
            continue
        xs, ys = wx[sel] - 0.5, wy[sel] - 0.5
        # splat and filter inside the strands' bounding box only (+ filter margin)
        bx0 = int(max(0, math.floor(float(xs.min())) - 3))
        by0 = int(max(0, math.floor(float(ys.min())) - 3))
        bx1 = int(min(w, math.ceil(float(xs.max())) + 4))
        by1 = int(min(h, math.ceil(float(ys.max())) + 4))
        if bx1 <= bx0 or by1 <= by0:
            continue
        bh, bw = by1 - by0, bx1 - bx0
        acc = _splat(xs - bx0, ys - by0, weight[sel], bh, bw).view(bh, bw)
        if len(kern) > 1:
            acc = torch.from_numpy(imops.separable_filter(acc.numpy(), np.array(kern)))
        total[by0:by1, bx0:bx1] += acc
    return total.clamp_(0.0, 1.0).numpy()


def _splat(fx: torch.Tensor, fy: torch.Tensor, wt: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear splat of weights at continuous pixel-index coordinates onto a flat ``[H*W]`` grid.

    Samples whose 2x2 footprint leaves the grid are dropped.
    """
    x0, y0 = torch.floor(fx), torch.floor(fy)
    tx, ty = fx - x0, fy - y0
    x0i, y0i = x0.long(), y0.long()
    ok = (x0i >= 0) & (x0i < w - 1) & (y0i >= 0) & (y0i < h - 1)
    if not bool(ok.all()):
        x0i, y0i, tx, ty, wt = x0i[ok], y0i[ok], tx[ok], ty[ok], wt[ok]
    idx = y0i * w + x0i
    wx1, wy1 = wt * tx, ty
    wx0 = wt - wx1
    idx_all = torch.cat([idx, idx + 1, idx + w, idx + w + 1])
    w_all = torch.cat([wx0 * (1 - wy1), wx1 * (1 - wy1), wx0 * wy1, wx1 * wy1])
    acc = torch.zeros(h * w)
    acc.index_add_(0, idx_all, w_all)
    return acc


# ------------------------------------------------------------------------------------------------ subject
@dataclass
class Subject:
    """A random foreground: shapes, strands, optional fabric/smoke/motion blur and its colour textures.

    Textures are ``[H, W, 3]`` float32 sRGB at the frame size in subject-local coordinates; :func:`render_subject`
    warps them with the pose, so a moving subject carries its colours along.
    """

    size: tuple[int, int]
    pose: _Pose
    bodies: list[_Radial]
    holes: list[_Radial]
    softness: float
    body_tex: np.ndarray
    strands: _Strands | None = None
    hair_tex: np.ndarray | None = None
    fabric: _Radial | None = None
    fabric_params: tuple[float, float, float] = (0.5, 4.0, 0.0)  # opacity, weave period px, weave angle
    fabric_tex: np.ndarray | None = None
    smoke: _Radial | None = None
    smoke_params: tuple[float, float] = (0.5, 0.5)  # opacity, threshold
    smoke_noise: np.ndarray | None = None
    smoke_tex: np.ndarray | None = None
    motion_blur: tuple[float, float] | None = None  # length px, angle rad
    radius: float = 0.0  # main body's radius px (where fabric and smoke are placed)


def make_subject(rng: RngLike, size: tuple[int, int], textures: Sequence[np.ndarray] | None = None,
                 soft_edge_prob: float = SOFT_EDGE_PROB) -> Subject:
    """Draw a random subject for a ``size = (H, W)`` frame (textures: photos for colours, or None).

    ``soft_edge_prob`` is the chance of a defocused body edge (a 2–24 px ramp at 512 px, scaled with the
    frame) instead of a sharp 1 px one."""
    rng = as_rng(rng)
    h, w = size
    m = float(min(h, w))
    res = m / 512.0
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
    pose = _Pose(cx, cy)
    radius = rng.uniform(0.12, 0.38) * m
    bodies = [_random_radial(rng, cx, cy, radius)]
    for _ in range(int(rng.integers(0, 3))):
        a = rng.uniform(0, 2 * math.pi)
        d = radius * rng.uniform(0.4, 1.0)
        bodies.append(_random_radial(rng, cx + d * math.cos(a), cy + d * math.sin(a), radius * rng.uniform(0.3, 0.7)))
    holes = []
    if rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 4))):
            a = rng.uniform(0, 2 * math.pi)
            d = radius * rng.uniform(0.0, 0.55)
            holes.append(_random_radial(rng, cx + d * math.cos(a), cy + d * math.sin(a),
                                        radius * rng.uniform(0.05, 0.25)))
    softness = 1.0 if rng.random() < 1.0 - soft_edge_prob else float(rng.uniform(2.0, 24.0) * res)
    subj = Subject(size, pose, bodies, holes, softness, _texture(rng, size, textures), radius=float(radius))
    if rng.random() < 0.75:
        body = _render_body(subj, pose)
        subj.strands = _make_strands(rng, body, pose, m)
        base = subj.body_tex if rng.random() < 0.5 else _texture(rng, size, textures)
        subj.hair_tex = jitter_colour(rng, base, push=float(rng.uniform(0.0, 0.7)))
    if rng.random() < 0.25:
        _add_fabric(rng, subj, textures)
    if rng.random() < 0.2:
        _add_smoke(rng, subj)
    if rng.random() < 0.15:
        _add_motion_blur(rng, subj)
    return subj


def _add_fabric(rng: np.random.Generator, subj: Subject, textures: Sequence[np.ndarray] | None) -> None:
    """Give ``subj`` a semi-transparent woven sheet beside its main body (opacity 0.15–0.75, weave period
    2–8 px at 512 px)."""
    cx, cy, radius, res = subj.pose.cx, subj.pose.cy, subj.radius, min(subj.size) / 512.0
    a = rng.uniform(0, 2 * math.pi)
    fr = _random_radial(rng, cx + radius * math.cos(a), cy + radius * math.sin(a), radius * rng.uniform(0.4, 0.9))
    fr.star_k, fr.harm_a = 0, fr.harm_a * 0.5
    subj.fabric = fr
    subj.fabric_params = (float(rng.uniform(0.15, 0.75)), float(rng.uniform(2.0, 8.0) * max(res, 0.5)),
                          float(rng.uniform(0, math.pi)))
    subj.fabric_tex = _texture(rng, subj.size, textures)


def _add_smoke(rng: np.random.Generator, subj: Subject) -> None:
    """Give ``subj`` a grey, noise-shaped wisp of smoke beside its main body (opacity 0.3–0.9)."""
    cx, cy, radius = subj.pose.cx, subj.pose.cy, subj.radius
    a = rng.uniform(0, 2 * math.pi)
    sm = _Radial(cx + radius * math.cos(a), cy + radius * math.sin(a), radius * rng.uniform(0.5, 1.2),
                 radius * rng.uniform(0.5, 1.2), float(rng.uniform(0, math.pi)))
    subj.smoke = sm
    subj.smoke_params = (float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.3, 0.6)))
    subj.smoke_noise = fbm(rng, subj.size, base_cells=rng.uniform(3, 10))
    grey = rng.uniform(0.4, 1.0)
    subj.smoke_tex = np.clip(grey * (0.85 + 0.3 * rng.random(3)) * np.ones((1, 1, 3)), 0, 1).astype(np.float32)


def _add_motion_blur(rng: np.random.Generator, subj: Subject) -> None:
    """Blur ``subj`` along one direction by 4–40 px at 512 px."""
    subj.motion_blur = (float(rng.uniform(4.0, 40.0) * min(subj.size) / 512.0), float(rng.uniform(0, math.pi)))


def _render_body(subj: Subject, pose: _Pose) -> np.ndarray:
    body = np.zeros(subj.size, np.float32)
    for b in subj.bodies:
        body = np.maximum(body, _render_radial(b, pose, subj.size, subj.softness))
    for hole in subj.holes:
        body *= 1.0 - _render_radial(hole, pose, subj.size, subj.softness)
    return body


def _warp(img: np.ndarray, pose: _Pose) -> np.ndarray:
    """Sample a subject-local image at the world pixels of ``pose`` (bilinear, reflected borders)."""
    if pose.is_identity() or img.shape[0] == 1:
        return img
    h, w = img.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32) + 0.5, np.arange(h, dtype=np.float32) + 0.5)
    lx, ly = pose.to_local(gx, gy)
    grid = torch.from_numpy(np.stack([2 * lx / w - 1, 2 * ly / h - 1], axis=-1).astype(np.float32))[None]
    out = F.grid_sample(imops.to_tensor(img), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return imops.from_tensor(out, img.ndim)


def _motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Directional box blur of ``length`` px by a recursive comb of whole-pixel shifts (2^5 taps)."""
    d = length / 2.0
    out = img
    for _ in range(5):
        sx, sy = round(0.5 * d * math.cos(angle)), round(0.5 * d * math.sin(angle))
        if sx or sy:
            out = 0.5 * (imops.shift(out, sy, sx) + imops.shift(out, -sy, -sx))
        d /= 2.0
    return out


def render_subject(subj: Subject, pose: _Pose | None = None, t: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Render ``subj`` at ``pose`` (default: rest) and time ``t`` (frames, for strand sway).

    Returns:
        alpha ``[H, W]`` float32 in [0, 1] and premultiplied foreground ``[H, W, 3]`` float32 (sRGB values,
        ``alpha * F``). Layers composite back to front: smoke, fabric, body, strands.
    """
    pose = pose or subj.pose
    h, w = subj.size
    alpha = np.zeros((h, w), np.float32)
    premult = np.zeros((h, w, 3), np.float32)

    def over(a: np.ndarray, colour: np.ndarray) -> None:
        rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
        if rows.size == 0:
            return
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        ab = a[sl][..., None]
        col = colour if colour.shape[0] == 1 else colour[sl]
        premult[sl] = ab * col + (1.0 - ab) * premult[sl]
        alpha[sl] = ab[..., 0] + (1.0 - ab[..., 0]) * alpha[sl]

    if subj.smoke is not None and subj.smoke_noise is not None and subj.smoke_tex is not None:
        op, thr = subj.smoke_params
        radial = _render_radial(subj.smoke, pose, subj.size, softness=0.6 * subj.smoke.ax)
        noise = _warp(subj.smoke_noise, pose)
        a = op * radial * np.clip((noise - thr) / 0.35, 0.0, 1.0) ** 1.5
        over(a.astype(np.float32), subj.smoke_tex)
    if subj.fabric is not None and subj.fabric_tex is not None:
        op, period, ang = subj.fabric_params
        cov = _render_radial(subj.fabric, pose, subj.size, softness=1.0)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32) + 0.5, np.arange(h, dtype=np.float32) + 0.5)
        lx, ly = pose.to_local(gx, gy)
        u = (math.cos(ang) * lx + math.sin(ang) * ly) * (2 * math.pi / period)
        v = (-math.sin(ang) * lx + math.cos(ang) * ly) * (2 * math.pi / period)
        weave = 0.5 + 0.25 * (np.sin(u) + np.sin(v))
        a = np.clip(cov * op * (0.55 + 0.9 * weave), 0.0, 1.0)
        over(a.astype(np.float32), _warp(subj.fabric_tex, pose))
    over(_render_body(subj, pose), _warp(subj.body_tex, pose))
    if subj.strands is not None and subj.hair_tex is not None:
        over(_render_strands(subj.strands, pose, subj.size, t), _warp(subj.hair_tex, pose))
    if subj.motion_blur is not None:
        length, ang = subj.motion_blur
        alpha = _motion_blur(alpha, length, ang)
        premult = _motion_blur(premult, length, ang)
    return np.clip(alpha, 0.0, 1.0), np.clip(premult, 0.0, 1.0)


def _composite(alpha: np.ndarray, premult: np.ndarray, bg: np.ndarray, fill: np.ndarray,
               linear: bool) -> Sample:
    a3 = alpha[..., None]
    fg = np.where(a3 > 1e-4, premult / np.maximum(a3, 1e-4), fill)
    fg = np.clip(fg, 0.0, 1.0).astype(np.float32)
    if linear:
        rgb = imops.linear_to_srgb(a3 * imops.srgb_to_linear(fg) + (1.0 - a3) * imops.srgb_to_linear(bg))
    else:
        rgb = np.clip(a3 * fg + (1.0 - a3) * bg, 0.0, 1.0).astype(np.float32)
    return Sample(rgb=rgb, alpha=alpha.astype(np.float32), fg=fg, bg=bg.astype(np.float32))


TEXTURE_CASES = ("textured_soft_body", "fabric", "patterned_background")
"""Composites drawn with ``texture_case_prob`` (:func:`make_sample`) by default: plate texture next to a soft or
fractional edge, where a refiner is tempted to turn texture into matte structure or to erase real structure."""

ALL_TEXTURE_CASES = (*TEXTURE_CASES, "camouflage")
"""Every case :func:`apply_texture_case` draws; ``camouflage`` (the body wears the background's own texture, told
apart by colour only) is opt-in (``texture_cases``), so the default draws stay those of earlier versions."""


def apply_texture_case(rng: np.random.Generator, case: str, subj: Subject, bg: np.ndarray,
                       textures: Sequence[np.ndarray] | None) -> np.ndarray:
    """Make ``subj`` and its background ``bg`` (``[H, W, 3]`` sRGB) one of :data:`TEXTURE_CASES`, in place for
    ``subj``; returns the background to composite over.

    * ``textured_soft_body``: the body gets a defocused edge (2–24 px ramp at 512 px) and a generated texture —
      hard or soft stripes (70 %) or fractal noise — that stays sharp inside it;
    * ``fabric``: a semi-transparent woven sheet (added if the subject has none), coloured half the time from the
      background itself (a weave over similar colours);
    * ``patterned_background``: a striped background (defocused 30 % of the time) behind the subject, which gets
      a smoke wisp (50 %, if it has none) and a motion blur (30 %, if it has none);
    * ``camouflage``: the body wears the background's own texture, colour-jittered (a tint pulled 0.1–0.4 towards
      a random colour), aligned with the background half the time (the texture runs on across the edge) and
      otherwise flipped up-down, left-right or both, behind an edge 1–16 px wide at 512 px: only colour tells
      body from background, so texture edges near the matte's edge are not matte edges.
    """
    res = min(subj.size) / 512.0
    if case == "textured_soft_body":
        subj.softness = max(subj.softness, float(rng.uniform(2.0, 24.0) * res))
        subj.body_tex = generated_texture(rng, subj.size, kind=2 if rng.random() < 0.7 else 0)
    elif case == "fabric":
        if subj.fabric is None:
            _add_fabric(rng, subj, textures)
        if rng.random() < 0.5:
            subj.fabric_tex = jitter_colour(rng, bg, push=float(rng.uniform(0.0, 0.3)))
    elif case == "patterned_background":
        bg = generated_texture(rng, subj.size, kind=2)
        if rng.random() < 0.3:
            bg = imops.gaussian_blur(bg, float(rng.uniform(1.0, 4.0)) * res)
        if subj.smoke is None and rng.random() < 0.5:
            _add_smoke(rng, subj)
        if subj.motion_blur is None and rng.random() < 0.3:
            _add_motion_blur(rng, subj)
    elif case == "camouflage":
        subj.softness = max(subj.softness, float(rng.uniform(1.0, 16.0) * res))
        flips = [(), (), (), (0,), (1,), (0, 1)][int(rng.integers(6))]  # aligned half the time
        src = np.ascontiguousarray(np.flip(bg, flips)) if flips else bg
        subj.body_tex = jitter_colour(rng, src, push=float(rng.uniform(0.1, 0.4)))
    else:
        raise ValueError(f"unknown texture case {case!r}: choose from {', '.join(ALL_TEXTURE_CASES)}")
    return bg


def make_sample(rng: RngLike, size: tuple[int, int] = (512, 512), backgrounds: Sequence[np.ndarray] | None = None,
                textures: Sequence[np.ndarray] | None = None, linear: bool = False,
                soft_edge_prob: float = SOFT_EDGE_PROB, texture_case_prob: float = 0.0,
                texture_cases: Sequence[str] | None = None) -> Sample:
    """One random composite.

    Args:
        rng: seed or ``numpy.random.Generator``; the same seed gives the same sample bit for bit.
        size: ``(H, W)`` of the frame.
        backgrounds: photos (``[h, w, 3]`` float32 sRGB) to crop/rescale backgrounds from; None generates them.
        textures: photos to colour the foreground with (colour-jittered crops); None falls back to
            ``backgrounds``, and generated textures when both are None.
        linear: composite in linear light instead of display sRGB (see the module docstring).
        soft_edge_prob: chance of a defocused body edge (see :func:`make_subject`).
        texture_case_prob: chance that the composite is a texture case (drawn uniformly from ``texture_cases``;
            :func:`apply_texture_case`). 0 (the default) draws exactly the samples of earlier versions.
        texture_cases: the cases to draw from (names of :data:`ALL_TEXTURE_CASES`; a name given twice is drawn
            twice as often); None: :data:`TEXTURE_CASES`.

    Returns:
        :class:`Sample` with ``rgb``/``fg``/``bg`` ``[H, W, 3]`` and ``alpha`` ``[H, W]``, float32 sRGB in [0, 1],
        and ``texture_case`` set when a texture case was drawn.
    """
    rng = as_rng(rng)
    size = (int(size[0]), int(size[1]))
    textures = textures if textures is not None else backgrounds
    subj = make_subject(rng, size, textures, soft_edge_prob)
    bg = make_background(rng, size, backgrounds)
    textured = texture_case_prob > 0.0 and rng.random() < texture_case_prob
    if textured:
        cases = tuple(texture_cases) if texture_cases else TEXTURE_CASES
        case = cases[int(rng.integers(len(cases)))]
        bg = apply_texture_case(rng, case, subj, bg, textures)
    alpha, premult = render_subject(subj)
    smp = _composite(alpha, premult, bg, subj.body_tex, linear)
    smp.texture_case = bool(textured)
    return smp


# ----------------------------------------------------------------------------------------------- sequences
def make_sequence(seed: RngLike, size: tuple[int, int], n_frames: int, motion: str = "locked",
                  backgrounds: Sequence[np.ndarray] | None = None, textures: Sequence[np.ndarray] | None = None,
                  linear: bool = False) -> Iterator[Sample]:
    """Yield ``n_frames`` composites of one subject moving over one background, one frame at a time.

    The subject drifts (small translation), rocks (±3°) and its strands sway. ``motion='locked'`` keeps the
    camera locked off: the background array is identical in every frame. ``motion='moving'`` pans the
    camera: the background slides by a sub-pixel-accurate offset each frame (bilinear).

    Yields:
        :class:`Sample` per frame (``rgb``/``fg``/``bg`` ``[H, W, 3]``, ``alpha`` ``[H, W]``, float32 sRGB).
    """
    if motion not in ("locked", "moving"):
        raise ValueError(f"motion must be 'locked' or 'moving', not {motion!r}")
    rng = as_rng(seed)
    h, w = int(size[0]), int(size[1])
    m = float(min(h, w))
    textures = textures if textures is not None else backgrounds
    subj = make_subject(rng, (h, w), textures)
    if subj.strands is None:  # sequences are about hair: always give the subject strands
        subj.strands = _make_strands(rng, _render_body(subj, subj.pose), subj.pose, m)
        subj.hair_tex = jitter_colour(rng, subj.body_tex, push=0.3)
    subj.motion_blur = None
    vel = rng.uniform(-1, 1, 2) * 0.002 * m
    wob_amp, wob_per = rng.uniform(0, 0.01, 2) * m, rng.uniform(20, 60)
    rock, rock_per = rng.uniform(0, math.radians(3)), rng.uniform(20, 80)
    pan = rng.uniform(-1, 1, 2) * 0.004 * m if motion == "moving" else np.zeros(2)
    margin = np.ceil(np.abs(pan) * max(n_frames - 1, 0)).astype(int) + 2
    canvas = make_background(rng, (h + int(margin[1]), w + int(margin[0])), backgrounds)
    start = np.where(pan >= 0, 0.0, margin - 1.0)
    for f in range(n_frames):
        pose = _Pose(subj.pose.cx, subj.pose.cy,
                     float(vel[0] * f + wob_amp[0] * math.sin(2 * math.pi * f / wob_per)),
                     float(vel[1] * f + wob_amp[1] * math.cos(2 * math.pi * f / wob_per)),
                     float(rock * math.sin(2 * math.pi * f / rock_per)))
        ox, oy = start + pan * f
        bg = _crop_subpixel(canvas, float(oy), float(ox), h, w) if motion == "moving" else canvas[:h, :w]
        alpha, premult = render_subject(subj, pose, t=float(f))
        yield _composite(alpha, premult, bg, _warp(subj.body_tex, pose), linear)


def _crop_subpixel(img: np.ndarray, oy: float, ox: float, h: int, w: int) -> np.ndarray:
    iy, ix = int(math.floor(oy)), int(math.floor(ox))
    fy, fx = oy - iy, ox - ix
    iy, ix = min(iy, img.shape[0] - h - 1), min(ix, img.shape[1] - w - 1)
    a = img[iy:iy + h, ix:ix + w]
    b = img[iy:iy + h, ix + 1:ix + 1 + w]
    c = img[iy + 1:iy + 1 + h, ix:ix + w]
    d = img[iy + 1:iy + 1 + h, ix + 1:ix + 1 + w]
    return ((1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)).astype(np.float32)


# ------------------------------------------------------------------------------------------------- priors
def _blobs(rng: np.random.Generator, size: tuple[int, int], coverage: float) -> np.ndarray:
    n = fbm(rng, size, base_cells=rng.uniform(4, 12), octaves=3)
    thr = float(np.quantile(n, 1.0 - coverage))
    return np.clip((n - thr) / 0.05, 0.0, 1.0).astype(np.float32)


def _down_up(a: np.ndarray, factor: int) -> np.ndarray:
    h, w = a.shape
    small = imops.resize(a, (max(1, -(-h // factor)), max(1, -(-w // factor))), mode="aa")
    return imops.resize(small, (h, w), mode="bilinear")


def degrade_prior(alpha: np.ndarray, rng: RngLike, kind: str | None = None, scale: float | None = None) -> np.ndarray:
    """Simulate a low-resolution prior network's output from a ground-truth matte.

    Args:
        alpha: ``[H, W]`` float32 in [0, 1].
        rng: seed or generator.
        kind: one of :data:`PRIOR_KINDS` (None draws one): ``downF`` area-downsamples by F and bilinearly
            upsamples; ``blur`` Gaussian blur; ``dilate``/``erode`` by 2–5 px; ``noise`` blotchy low-frequency
            plus fine noise; ``holes`` punches holes in the foreground and adds false blobs; ``down8_blur``;
            ``combo`` 2–3 random local degradations followed by ×4/×8/×16 down/up.
        scale: pixel scale of the "few px" magnitudes; None uses ``max(1, min(H, W) / 512)``.

    Returns:
        ``[H, W]`` float32 in [0, 1], the same size as ``alpha``.
    """
    rng = as_rng(rng)
    if kind is None:
        kind = str(rng.choice(PRIOR_KINDS))
    if kind not in PRIOR_KINDS:
        raise ValueError(f"unknown prior degradation {kind!r}; choose one of {', '.join(PRIOR_KINDS)}")
    a = np.asarray(alpha, dtype=np.float32)
    s = scale if scale is not None else max(1.0, min(a.shape) / 512.0)
    if kind.startswith("down") and kind[4:].isdigit():
        out = _down_up(a, int(kind[4:]))
    elif kind == "blur":
        out = imops.gaussian_blur(a, float(rng.uniform(1.5, 5.0) * s))
    elif kind == "dilate":
        out = imops.max_filter(a, int(round(rng.uniform(2, 5) * s)))
    elif kind == "erode":
        out = imops.min_filter(a, int(round(rng.uniform(2, 5) * s)))
    elif kind == "noise":
        blot = fbm(rng, a.shape, base_cells=rng.uniform(6, 20), octaves=3) - 0.5
        out = a + rng.uniform(0.1, 0.3) * blot * 2 + rng.normal(0, rng.uniform(0.005, 0.03), a.shape).astype(np.float32)
    elif kind == "holes":
        out = a * (1.0 - _blobs(rng, a.shape, rng.uniform(0.03, 0.12)))
        out = np.maximum(out, _blobs(rng, a.shape, rng.uniform(0.0, 0.05)) * rng.uniform(0.3, 1.0))
    elif kind == "down8_blur":
        out = imops.gaussian_blur(_down_up(a, 8), float(rng.uniform(1.5, 4.0) * s))
    else:  # combo
        out = a
        for k in rng.choice(["blur", "dilate", "erode", "noise", "holes"], size=int(rng.integers(2, 4)), replace=False):
            out = degrade_prior(out, rng, str(k), s)
        out = _down_up(out, int(rng.choice([4, 8, 16])))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def lowres_prior(alpha: np.ndarray, short_side: int = 512) -> np.ndarray:
    """The matte at the prior network's resolution: antialiased downscale so the short side is
    ``short_side`` (unchanged when already smaller). ``[H, W]`` -> ``[h, w]`` float32 in [0, 1]."""
    h, w = alpha.shape
    f = short_side / min(h, w)
    if f >= 1.0:
        return np.asarray(alpha, dtype=np.float32).copy()
    return np.clip(imops.resize(alpha, (max(1, round(h * f)), max(1, round(w * f))), mode="aa"), 0.0, 1.0)


# ------------------------------------------------------------------------------------------ training crops
@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set ``torch.set_num_threads(n)`` (None: leave it). Small images generate much faster
    single-threaded, especially when other processes share the cores."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _crop_centre(rng: np.random.Generator, alpha: np.ndarray, centre_prob: float) -> tuple[int, int]:
    h, w = alpha.shape
    if rng.random() < centre_prob:
        ys, xs = np.nonzero((alpha > 0.05) & (alpha < 0.95))
        if ys.size:
            i = int(rng.integers(ys.size))
            return int(ys[i]), int(xs[i])
    return int(rng.integers(h)), int(rng.integers(w))


def training_batch(rng: RngLike, batch: int, crop: int = 512, backgrounds: Sequence[np.ndarray] | None = None,
                   textures: Sequence[np.ndarray] | None = None, lr_factor: int | None = None,
                   centre_prob: float = 0.85, sample_scale: tuple[float, float] = (1.0, 1.6),
                   kinds: Sequence[str] | None = None, linear: bool = False,
                   threads: int | None = 1, soft_edge_prob: float = SOFT_EDGE_PROB,
                   texture_case_prob: float = 0.0,
                   texture_cases: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """A batch of SHM training crops from fresh synthetic composites.

    Each item composites a sample ``crop * U(sample_scale)`` px on a side, takes a ``crop²`` window centred
    on a transition pixel (0.05 < alpha < 0.95) with probability ``centre_prob`` (uniform otherwise), flips
    it horizontally half the time, degrades its matte with :func:`degrade_prior`, area-downsamples the
    degraded matte and the plate by ``lr_factor`` (one per batch; None draws 4 or 8) to give the prior
    network's view, and bilinearly upsamples the low-res prior back to the crop (``prior_hr``).
    ``kinds`` restricts the degradations (default: all of :data:`PRIOR_KINDS`). Generation runs with
    ``threads`` torch threads (restored afterwards; 1 is fastest for crops, None leaves the setting).
    ``soft_edge_prob``: chance of a defocused body edge per composite (see :func:`make_subject`);
    ``texture_case_prob``: chance of a texture case per composite, drawn from ``texture_cases`` (None:
    :data:`TEXTURE_CASES`; see :func:`make_sample`).

    Returns:
        dict of float32 CPU tensors in [0, 1] (sRGB for colour):
        ``rgb`` [B, 3, H, W], ``alpha`` [B, 1, H, W], ``prior_hr`` [B, 1, H, W], ``lr_rgb`` [B, 3, h, w],
        ``lr_prior`` [B, 1, h, w], ``fg`` [B, 3, H, W], ``bg`` [B, 3, H, W], ``texture`` [B, 1] (1: the item's
        composite is a texture case), ``kind`` [B, K] (one-hot of the item's degradation, :func:`kind_onehot`) and
        ``lr_factor`` (0-d int64), with ``H = W = crop`` and ``h = w = crop // lr_factor``.
    """
    with torch_threads(threads):
        return _training_batch(as_rng(rng), batch, crop, backgrounds, textures, lr_factor, centre_prob,
                               sample_scale, kinds, linear, soft_edge_prob, texture_case_prob, texture_cases)


def _training_batch(rng: np.random.Generator, batch: int, crop: int, backgrounds: Sequence[np.ndarray] | None,
                    textures: Sequence[np.ndarray] | None, lr_factor: int | None, centre_prob: float,
                    sample_scale: tuple[float, float], kinds: Sequence[str] | None,
                    linear: bool, soft_edge_prob: float, texture_case_prob: float,
                    texture_cases: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    f = int(lr_factor) if lr_factor is not None else int(rng.choice([4, 8]))
    if crop % f:
        raise ValueError(f"crop {crop} must be a multiple of lr_factor {f}")
    lr = crop // f
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("rgb", "alpha", "prior_hr", "lr_rgb", "lr_prior", "fg", "bg",
                                                        "texture", "kind")}
    for _ in range(batch):
        sh = int(round(crop * rng.uniform(*sample_scale)))
        sw = int(round(crop * rng.uniform(*sample_scale)))
        smp = make_sample(rng, (sh, sw), backgrounds, textures, linear, soft_edge_prob, texture_case_prob,
                          texture_cases)
        cy, cx = _crop_centre(rng, smp.alpha, centre_prob)
        y0 = int(np.clip(cy - crop // 2, 0, sh - crop))
        x0 = int(np.clip(cx - crop // 2, 0, sw - crop))
        sl = (slice(y0, y0 + crop), slice(x0, x0 + crop))
        flip = rng.random() < 0.5
        parts = {"rgb": smp.rgb[sl], "alpha": smp.alpha[sl], "fg": smp.fg[sl], "bg": smp.bg[sl]}
        if flip:
            parts = {k: v[:, ::-1] for k, v in parts.items()}
        parts = {k: np.ascontiguousarray(v) for k, v in parts.items()}
        # the kind is drawn here as degrade_prior would draw it (same generator call), so the batch can name it
        kind = str(rng.choice(list(kinds))) if kinds else str(rng.choice(PRIOR_KINDS))
        degraded = degrade_prior(parts["alpha"], rng, kind)
        lr_prior = imops.resize(degraded, (lr, lr), mode="area")
        out["rgb"].append(parts["rgb"].transpose(2, 0, 1))
        out["fg"].append(parts["fg"].transpose(2, 0, 1))
        out["bg"].append(parts["bg"].transpose(2, 0, 1))
        out["alpha"].append(parts["alpha"][None])
        out["lr_prior"].append(lr_prior[None])
        out["prior_hr"].append(imops.resize(lr_prior, (crop, crop), mode="bilinear")[None])
        out["lr_rgb"].append(imops.resize(parts["rgb"], (lr, lr), mode="area").transpose(2, 0, 1))
        out["texture"].append(np.array([float(smp.texture_case)], dtype=np.float32))
        out["kind"].append(kind_onehot(kind))
    res = {k: torch.from_numpy(np.clip(np.stack(v), 0.0, 1.0).astype(np.float32)) for k, v in out.items()}
    res["lr_factor"] = torch.tensor(f)
    return res
