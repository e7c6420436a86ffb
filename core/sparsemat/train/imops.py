"""Small numpy-in/numpy-out image operations backed by torch (resize, blur, min/max filters, shifts).

All functions take ``[H, W]`` or ``[H, W, C]`` float32 arrays and return the same layout, float32. They
know nothing about colour: values are filtered as given (the synthetic generator works in display sRGB).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``[H, W]`` or ``[H, W, C]`` array -> ``[1, C, H, W]`` float32 tensor (a view when possible)."""
    arr = np.ascontiguousarray(img, dtype=np.float32)
    t = torch.from_numpy(arr)
    if t.ndim == 2:
        return t[None, None]
    return t.permute(2, 0, 1)[None]


def from_tensor(t: torch.Tensor, like_ndim: int) -> np.ndarray:
    """``[1, C, H, W]`` tensor -> ``[H, W]`` (``like_ndim == 2``) or ``[H, W, C]`` float32 array."""
    if like_ndim == 2:
        return np.ascontiguousarray(t[0, 0].numpy(), dtype=np.float32)
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy(), dtype=np.float32)


def resize(img: np.ndarray, size: tuple[int, int], mode: str = "auto") -> np.ndarray:
    """Resize to ``size = (H, W)``.

    ``mode='auto'`` uses area averaging when both sides shrink by an integer factor, antialiased bilinear
    when shrinking otherwise and bilinear (``align_corners=False``) when enlarging. ``'area'``,
    ``'bilinear'`` and ``'nearest'`` force a mode.
    """
    h, w = img.shape[:2]
    if (h, w) == tuple(size):
        return np.ascontiguousarray(img, dtype=np.float32)
    t = to_tensor(img)
    if mode == "auto":
        if size[0] <= h and size[1] <= w:
            mode = "area" if h % size[0] == 0 and w % size[1] == 0 else "aa"
        else:
            mode = "bilinear"
    if mode == "area":
        out = F.interpolate(t, size=size, mode="area")
    elif mode == "aa":
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    elif mode == "nearest":
        out = F.interpolate(t, size=size, mode="nearest")
    else:
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return from_tensor(out, img.ndim)


def gaussian_kernel1d(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ``ceil(3 sigma)`` as a float32 tensor."""
    r = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def separable_filter(img: np.ndarray, kernel: torch.Tensor | np.ndarray) -> np.ndarray:
    """Correlate every channel with ``kernel`` along x then y (replicate borders). Odd or even length.

    Short kernels (<= 7 taps) run as weighted sums of shifted slices, longer ones as a grouped conv.
    """
    k = torch.as_tensor(np.asarray(kernel, dtype=np.float32))
    t = to_tensor(img)
    c = t.shape[1]
    n = k.numel()
    lo, hi = (n - 1) // 2, n // 2
    if n <= 7:
        h, w = t.shape[-2:]
        p = F.pad(t, (lo, hi, 0, 0), mode="replicate")
        acc = p[..., :, 0:w] * float(k[0])
        for i in range(1, n):
            acc += p[..., :, i:i + w] * float(k[i])
        p = F.pad(acc, (0, 0, lo, hi), mode="replicate")
        acc = p[..., 0:h, :] * float(k[0])
        for i in range(1, n):
            acc += p[..., i:i + h, :] * float(k[i])
        return from_tensor(acc, img.ndim)
    kx = k.view(1, 1, 1, n).repeat(c, 1, 1, 1)
    ky = k.view(1, 1, n, 1).repeat(c, 1, 1, 1)
    t = F.conv2d(F.pad(t, (lo, hi, 0, 0), mode="replicate"), kx, groups=c)
    t = F.conv2d(F.pad(t, (0, 0, lo, hi), mode="replicate"), ky, groups=c)
    return from_tensor(t, img.ndim)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels; large sigmas run at reduced resolution."""
    if sigma <= 0.3:
        return np.ascontiguousarray(img, dtype=np.float32)
    h, w = img.shape[:2]
    factor = int(max(1, sigma // 4))
    if factor > 1 and min(h, w) // factor >= 8:
        small = resize(img, (max(1, h // factor), max(1, w // factor)), mode="aa")
        small = separable_filter(small, gaussian_kernel1d(sigma / factor))
        return resize(small, (h, w), mode="bilinear")
    return separable_filter(img, gaussian_kernel1d(sigma))


def max_filter(img: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation with a ``(2r+1)²`` square (``radius <= 0`` returns the input)."""
    if radius <= 0:
        return np.ascontiguousarray(img, dtype=np.float32)
    t = to_tensor(img)
    t = F.max_pool2d(F.pad(t, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)
    return from_tensor(t, img.ndim)


def min_filter(img: np.ndarray, radius: int) -> np.ndarray:
    """Grey erosion with a ``(2r+1)²`` square."""
    return -max_filter(-np.asarray(img, dtype=np.float32), radius)


def shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate by whole pixels, filling uncovered pixels with the nearest edge value."""
    h, w = img.shape[:2]
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    return img[ys][:, xs]


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decode, float32 in [0, 1] -> linear light."""
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB encode, linear light in [0, 1] -> display sRGB float32 in [0, 1]."""
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)
