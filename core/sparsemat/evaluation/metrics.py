"""Alpha-matting error metrics with the field's definitions (RVM ``evaluation/``, DIM's MATLAB code).

Inputs are float arrays in [0, 1] (``[H, W]``; any float dtype; computed in float64). Each metric works over
the whole image (``mask=None``, as RVM and SparseMat report) or over a region (``mask``: ``[H, W]`` bool, e.g.
the trimap unknown region from :func:`unknown_mask`, as DIM/BGMv2 report). Every function returns the value
in the unit it is conventionally reported in (see :data:`UNITS`):

==========  =============================================================  ============
metric      definition                                                     reported as
==========  =============================================================  ============
``mad``     mean |p - g| over the region                                   x 1e3
``mse``     mean (p - g)^2 over the region                                 x 1e3
``sad``     sum |p - g| over the region                                    / 1e3
``grad``    sum (|grad p| - |grad g|)^2, Gaussian-derivative filters       / 1e3
            sigma = 1.4 (RVM/DIM), over the region
``conn``    sum |phi(p) - phi(g)| over the region (DIM connectivity)       / 1e3
``dtssd``   sqrt(sum ((p_t - p_t-1) - (g_t - g_t-1))^2 / N) over region    x 1e2
==========  =============================================================  ============

Notes against the references: RVM's HR Grad does not min-max normalise (its LR version does: pass
``normalize=True``); DIM's Grad/Conn have no /1000 and run over the unknown region only; DIM computes
gradients and connected components over the whole image and sums over the unknown region, as done here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

UNITS: dict[str, str] = {
    "mad": "x1e3",
    "mse": "x1e3",
    "sad": "/1e3",
    "grad": "/1e3",
    "conn": "/1e3",
    "dtssd": "x1e2",
}
"""Scale of each reported metric (lower is better for all)."""

METRICS: tuple[str, ...] = ("mad", "mse", "sad", "grad", "conn")
"""Per-frame metrics computed by :func:`evaluate` (``dtssd`` needs the previous frame)."""


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> None:
    if np.shape(pred) != np.shape(gt):
        raise ValueError(f"prediction {np.shape(pred)} and ground truth {np.shape(gt)} differ in shape")
    if mask is not None and np.shape(mask) != np.shape(gt):
        raise ValueError(f"mask {np.shape(mask)} and ground truth {np.shape(gt)} differ in shape")


def _select(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return x if mask is None else x[np.asarray(mask, dtype=bool)]


# -------------------------------------------------------------------------------------------------- trimap
def _dilate(m: np.ndarray, k: int) -> np.ndarray:
    """Binary dilation with a ``k x k`` square (k odd or even, separable running max)."""
    if k <= 1:
        return m.copy()
    lo, hi = (k - 1) // 2, k // 2
    out = m
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (lo, hi)
        p = np.pad(out, pad, mode="constant")
        n = out.shape[axis]
        acc = np.zeros_like(out)
        for i in range(k):
            acc |= p[i:i + n] if axis == 0 else p[:, i:i + n]
        out = acc
    return out


def unknown_mask(alpha: np.ndarray, k: int = 15) -> np.ndarray:
    """Trimap unknown region from a ground-truth matte.

    The seed set is every fractional pixel (0 < alpha < 1) plus both sides of any hard 0/1 step between
    4-neighbours; it is dilated by a ``k x k`` square (k px; 15 by default, the band the project trains on).

    Returns:
        ``[H, W]`` bool.
    """
    a = _f64(alpha)
    seed = (a > 0.0) & (a < 1.0)
    hard = a >= 0.5
    dx = hard[:, 1:] != hard[:, :-1]
    dy = hard[1:, :] != hard[:-1, :]
    seed[:, 1:] |= dx
    seed[:, :-1] |= dx
    seed[1:, :] |= dy
    seed[:-1, :] |= dy
    return _dilate(seed, k)


def make_trimap(alpha: np.ndarray, k: int = 15) -> np.ndarray:
    """Trimap ``[H, W]`` float32 with 0 (background), 0.5 (unknown, :func:`unknown_mask`) and 1 (foreground,
    alpha >= 0.5 outside the unknown region)."""
    unk = unknown_mask(alpha, k)
    tri = (_f64(alpha) >= 0.5).astype(np.float32)
    tri[unk] = 0.5
    return tri


# -------------------------------------------------------------------------------------------- pixel errors
def mad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute difference over the region, x 1e3."""
    _check(pred, gt, mask)
    d = _select(np.abs(_f64(pred) - _f64(gt)), mask)
    return float(d.mean() * 1e3) if d.size else 0.0


def mse(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the region, x 1e3."""
    _check(pred, gt, mask)
    d = _select((_f64(pred) - _f64(gt)) ** 2, mask)
    return float(d.mean() * 1e3) if d.size else 0.0


def sad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Sum of absolute differences over the region, / 1e3 (alpha in [0, 1], i.e. DIM's Σ|p−g|/255/1000)."""
    _check(pred, gt, mask)
    return float(_select(np.abs(_f64(pred) - _f64(gt)), mask).sum() / 1e3)


# --------------------------------------------------------------------------------------------------- grad
def gauss_derivative_kernels(sigma: float = 1.4, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """RVM/DIM's separable Gaussian-derivative filter: ``(g, dg)`` 1-D float64 kernels whose outer product
    ``g[:, None] * dg[None, :]`` is the x-derivative filter normalised to unit L2 norm (half size
    ``ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma epsilon)))``, 9 taps for sigma 1.4)."""
    half = int(math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -x * g / sigma**2
    return g / np.sqrt((g**2).sum()), dg / np.sqrt((dg**2).sum())


def _correlate1d(img: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along ``axis`` with an odd kernel, replicate borders (cv2.BORDER_REPLICATE)."""
    r = len(k) // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r, r)
    p = np.pad(img, pad, mode="edge")
    n = img.shape[axis]
    out = np.zeros_like(img)
    for i, w in enumerate(k):
        out += w * (p[i:i + n] if axis == 0 else p[:, i:i + n])
    return out


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """``|grad alpha|`` with the Gaussian-derivative filters of :func:`gauss_derivative_kernels`, float64."""
    g, dg = gauss_derivative_kernels(sigma)
    a = _f64(alpha)
    gx = _correlate1d(_correlate1d(a, g, 0), dg, 1)
    gy = _correlate1d(_correlate1d(a, dg, 0), g, 1)
    return np.sqrt(gx * gx + gy * gy)


def grad(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, sigma: float = 1.4,
         normalize: bool = False) -> float:
    """Gradient error Σ(|∇p| − |∇g|)² over the region, / 1e3.

    ``normalize=True`` min-max normalises both mattes first (RVM's low-resolution variant, cv2.normalize).
    """
    _check(pred, gt, mask)
    p, q = _f64(pred), _f64(gt)
    if normalize:
        p = (p - p.min()) / max(p.max() - p.min(), 1e-12)
        q = (q - q.min()) / max(q.max() - q.min(), 1e-12)
    d = (gradient_magnitude(p, sigma) - gradient_magnitude(q, sigma)) ** 2
    return float(_select(d, mask).sum() / 1e3)


# --------------------------------------------------------------------------------------------------- conn
def _largest_component_numpy(m: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of a bool image, by vectorised union-find (hook + pointer jumping)."""
    h, w = m.shape
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    hm = m[:, :-1] & m[:, 1:]
    vm = m[:-1, :] & m[1:, :]
    eu = np.concatenate([idx[:, :-1][hm], idx[:-1, :][vm]])
    ev = np.concatenate([idx[:, 1:][hm], idx[1:, :][vm]])
    parent = np.arange(h * w, dtype=np.int64)
    while eu.size:
        pu, pv = parent[eu], parent[ev]
        diff = pu != pv
        eu, ev, pu, pv = eu[diff], ev[diff], pu[diff], pv[diff]
        if not eu.size:
            break
        # hook the larger root under the smaller (parent[x] <= x always, so no cycles)
        np.minimum.at(parent, np.maximum(pu, pv), np.minimum(pu, pv))
        while True:
            pp = parent[parent]
            if np.array_equal(pp, parent):
                break
            parent = pp
    roots = parent.reshape(h, w)
    counts = np.bincount(roots[m], minlength=h * w)
    if counts.max(initial=0) == 0:
        return np.zeros_like(m)
    return m & (roots == int(np.argmax(counts)))


def largest_component(m: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of ``m`` (``[H, W]`` bool) -> bool mask (all False when empty).
    Uses ``scipy.ndimage.label`` when SciPy is installed, a numpy union-find otherwise (same result)."""
    m = np.asarray(m, dtype=bool)
    try:
        from scipy import ndimage
    except ImportError:
        return _largest_component_numpy(m)
    labels, n = ndimage.label(m)  # default structure = 4-connectivity
    if n == 0:
        return np.zeros_like(m)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == int(np.argmax(counts))


def conn(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, step: float = 0.1) -> float:
    """Connectivity error (Rhemann et al., as RVM's MetricCONN), / 1e3.

    For t = step, 2 step, ..., 1: omega_t = largest 4-connected component of (p >= t) & (g >= t); each
    pixel's l is the last threshold before it leaves omega; phi(x) = 1 − (x − l)·[x − l >= 0.15];
    error = Σ|phi(p) − phi(g)| over the region.
    """
    _check(pred, gt, mask)
    return float(_select(conn_map(pred, gt, step), mask).sum() / 1e3)


def conn_map(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> np.ndarray:
    """Per-pixel connectivity error |phi(p) − phi(g)| (see :func:`conn`), ``[H, W]`` float64."""
    p, g = _f64(pred), _f64(gt)
    thresh = np.arange(0, 1 + step, step)
    round_down = -np.ones_like(g)
    for i in range(1, len(thresh)):
        omega = largest_component((g >= thresh[i]) & (p >= thresh[i]))
        sel = (round_down == -1) & ~omega
        round_down[sel] = thresh[i - 1]
    round_down[round_down == -1] = 1.0
    gd, pd = g - round_down, p - round_down
    g_phi = 1 - gd * (gd >= 0.15)
    p_phi = 1 - pd * (pd >= 0.15)
    return np.abs(g_phi - p_phi)


# -------------------------------------------------------------------------------------------------- dtSSD
def dtssd(pred_t: np.ndarray, pred_tm1: np.ndarray, gt_t: np.ndarray, gt_tm1: np.ndarray,
          mask: np.ndarray | None = None) -> float:
    """Temporal coherence sqrt(Σ((p_t − p_t−1) − (g_t − g_t−1))² / N) over the region (N pixels), x 1e2."""
    _check(pred_t, gt_t, mask)
    d = ((_f64(pred_t) - _f64(pred_tm1)) - (_f64(gt_t) - _f64(gt_tm1))) ** 2
    d = _select(d, mask)
    return float(math.sqrt(d.sum() / d.size) * 1e2) if d.size else 0.0


def dtssd_sequence(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray],
                   masks: Sequence[np.ndarray] | None = None) -> float:
    """Mean per-frame dtSSD of a sequence, frame 0 counted as 0 (RVM's convention); masks per frame."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predicted frames but {len(gts)} ground-truth frames")
    if not preds:
        return 0.0
    vals = [0.0] + [dtssd(preds[t], preds[t - 1], gts[t], gts[t - 1], None if masks is None else masks[t])
                    for t in range(1, len(preds))]
    return float(np.mean(vals))


# ------------------------------------------------------------------------------------------------- bundle
def evaluate(pred: np.ndarray, gt: np.ndarray, k: int = 15, metrics: Sequence[str] = METRICS,
             prev: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """All metrics over the whole image and over the unknown region (``k x k`` dilated, keys ``*_unk``).

    Args:
        pred, gt: ``[H, W]`` float in [0, 1].
        k: trimap dilation for :func:`unknown_mask`.
        metrics: subset of :data:`METRICS` (``conn`` is the slow one at 4K).
        prev: ``(pred_tm1, gt_tm1)`` of the previous frame to add ``dtssd``/``dtssd_unk``.

    Returns:
        ``{"mad": ..., "mad_unk": ..., ...}`` in the units of :data:`UNITS`.
    """
    fns = {"mad": mad, "mse": mse, "sad": sad, "grad": grad, "conn": conn}
    unk = unknown_mask(gt, k)
    out: dict[str, float] = {}
    for name in metrics:
        if name not in fns:
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(fns)}")
        if name in ("grad", "conn"):  # one filtering/labelling pass serves both regions
            out.update(_both_regions(name, pred, gt, unk))
        else:
            out[name] = fns[name](pred, gt)
            out[name + "_unk"] = fns[name](pred, gt, unk)
    if prev is not None:
        out["dtssd"] = dtssd(pred, prev[0], gt, prev[1])
        out["dtssd_unk"] = dtssd(pred, prev[0], gt, prev[1], unk)
    return out


def _both_regions(name: str, pred: np.ndarray, gt: np.ndarray, unk: np.ndarray) -> dict[str, float]:
    if name == "grad":
        d = (gradient_magnitude(pred) - gradient_magnitude(gt)) ** 2
        return {"grad": float(d.sum() / 1e3), "grad_unk": float(d[unk].sum() / 1e3)}
    c = conn_map(pred, gt)
    return {"conn": float(c.sum() / 1e3), "conn_unk": float(c[unk].sum() / 1e3)}
