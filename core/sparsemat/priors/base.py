"""The :class:`Prior` protocol and the resize helpers every prior shares.

A prior turns the low-resolution plate into a rough alpha matte. The engine resizes the plate to
:func:`prior_input_size` (short side → 512, both sides rounded up to a multiple of 32, as the
official SparseMat inference code) and calls :meth:`Prior.predict` once per frame, in frame order;
:meth:`Prior.reset` forgets any temporal state (recurrent models) before a jump in time.
"""

from __future__ import annotations

import math
import warnings
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sparsemat.errors import DeviceError, InputError, InputWarning


@runtime_checkable
class Prior(Protocol):
    """A source of low-resolution alpha.

    Attributes:
        name: registry name (``input``, ``rvm``, ``lpn``, ``onnx:/path/model.onnx``), shown in reports.
    """

    name: str

    def reset(self) -> None:
        """Forget temporal state; the next :meth:`predict` is treated as the first frame of a shot."""
        ...

    def predict(self, lr_rgb: Tensor) -> Tensor:
        """Predict alpha for one frame.

        Args:
            lr_rgb: [1, 3, h, w] float32, display-referred sRGB in [0, 1], usually at
                :func:`prior_input_size` of the plate.

        Returns:
            [1, 1, h, w] float32 alpha in [0, 1] on the same device as ``lr_rgb``.
        """
        ...


#: The prior input's long side is at most this many times ``short_side`` (a 4096 px long side at 512).
MAX_PRIOR_ASPECT = 8


def prior_input_size(height: int, width: int, short_side: int = 512, pixel_aspect: float = 1.0) -> tuple[int, int]:
    """Low-resolution working size for a plate of ``height`` x ``width`` pixels.

    The short side is scaled to ``short_side`` and each dimension is rounded **up** to a multiple of
    32 (official ``SparseMat.inference``). Integer arithmetic avoids the float round-off with which
    the official expression occasionally overshoots by 32 pixels.

    With ``pixel_aspect`` ≠ 1 (anamorphic plates: a pixel ``pixel_aspect`` times as wide as high) the size
    is that of the desqueezed picture, ``width * pixel_aspect`` wide, so the prior sees square pixels;
    a 2880 x 2160 plate at 2.0 gets 1376 x 512 instead of 704 x 512.

    A picture more than :data:`MAX_PRIOR_ASPECT` times as long as it is high (or the reverse) is scaled so that its
    long side is ``MAX_PRIOR_ASPECT * short_side``: scaling a 1 x 300 strip's short side to 512 would ask for a
    512 x 153,600 prior input (tens of GB).

    Returns:
        (h, w), both positive multiples of 32.
    """
    if height <= 0 or width <= 0:
        raise InputError(f"The plate has an empty size ({width} x {height} pixels).")
    if short_side <= 0:
        raise InputError(f"The prior resolution must be positive, got {short_side}.")
    if not (math.isfinite(pixel_aspect) and pixel_aspect > 0):
        raise InputError(f"The pixel aspect ratio must be a positive number, got {pixel_aspect}.")
    picture_width = width * pixel_aspect
    if max(height, picture_width) > MAX_PRIOR_ASPECT * min(height, picture_width):
        # a strip (a 1-pixel line, a 360° panorama): the long side, not the short one, sets the scale
        scale = MAX_PRIOR_ASPECT * short_side / max(height, picture_width)
        return max(32, math.ceil(height * scale / 32 - 1e-9) * 32), max(32, math.ceil(picture_width * scale / 32 - 1e-9) * 32)
    if pixel_aspect != 1.0:
        span = min(float(height), picture_width)
        return (math.ceil(short_side * height / span / 32 - 1e-9) * 32,
                math.ceil(short_side * picture_width / span / 32 - 1e-9) * 32)
    m = min(height, width)
    h = -(-short_side * height // (m * 32)) * 32
    w = -(-short_side * width // (m * 32)) * 32
    return h, w


def resize_rgb(rgb: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a plate bilinearly without antialiasing (the official LR path).

    Args:
        rgb: [B, 3, H, W] float32 display sRGB in [0, 1].
        size: target (h, w).

    Returns:
        [B, 3, h, w] float32 in the value range of the input.
    """
    if tuple(rgb.shape[-2:]) == tuple(size):
        return rgb
    return F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)


def resize_alpha(alpha: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample a matte to ``size``: antialiased bilinear when shrinking, bilinear when enlarging.

    Args:
        alpha: [B, 1, H, W] float32 in [0, 1].
        size: target (h, w).

    Returns:
        [B, 1, h, w] float32 clamped to [0, 1].
    """
    if tuple(alpha.shape[-2:]) != tuple(size):
        shrink = size[0] < alpha.shape[-2] or size[1] < alpha.shape[-1]
        alpha = F.interpolate(alpha, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return alpha.clamp(0.0, 1.0)


def lr_input(rgb: np.ndarray | Tensor, short_side: int = 512, pixel_aspect: float = 1.0) -> Tensor:
    """Make the prior input from a full-resolution plate.

    Args:
        rgb: [H, W, 3] numpy or [1, 3, H, W] tensor, float32 display sRGB in [0, 1].
        short_side: short side of the working size (see :func:`prior_input_size`).
        pixel_aspect: the plate's pixel aspect ratio; the input is desqueezed to square pixels.

    Returns:
        [1, 3, h, w] float32 tensor in [0, 1] at :func:`prior_input_size`.
    """
    t = _as_nchw(rgb, channels=3, what="plate")
    return resize_rgb(t, prior_input_size(t.shape[-2], t.shape[-1], short_side, pixel_aspect)).clamp(0.0, 1.0)


def check_lr_rgb(lr_rgb: Tensor, prior: str) -> None:
    """Raise :class:`InputError` unless ``lr_rgb`` is a [1, 3, h, w] floating tensor."""
    if not isinstance(lr_rgb, Tensor) or lr_rgb.dim() != 4 or lr_rgb.shape[:2] != (1, 3):
        shape = tuple(lr_rgb.shape) if isinstance(lr_rgb, Tensor) else type(lr_rgb).__name__
        raise InputError(f"Prior '{prior}' needs a [1, 3, h, w] RGB image, got {shape}.")
    if not lr_rgb.is_floating_point():
        raise InputError(f"Prior '{prior}' needs a float image in [0, 1], got {lr_rgb.dtype}.")


def sanitize_alpha(alpha: Tensor, source: str) -> Tensor:
    """Replace NaN/Inf by 0 and clamp to [0, 1], warning once (InputWarning) when values were off.

    Args:
        alpha: any-shape float tensor.
        source: what produced it (named in the warning).

    Returns:
        float32 tensor of the same shape in [0, 1].
    """
    alpha = alpha.float()
    finite = torch.isfinite(alpha)
    if not bool(finite.all()):
        warnings.warn(f"{source} contains NaN or infinite values; they are treated as 0.", InputWarning, stacklevel=3)
        alpha = torch.where(finite, alpha, torch.zeros_like(alpha))
    lo, hi = (float(alpha.min()), float(alpha.max())) if alpha.numel() else (0.0, 0.0)
    if lo < -1e-3 or hi > 1 + 1e-3:
        warnings.warn(
            f"{source} has values from {lo:.3g} to {hi:.3g}; they are clipped to 0-1.", InputWarning, stacklevel=3
        )
    return alpha.clamp(0.0, 1.0)


def torch_device(device: str | torch.device = "cpu") -> torch.device:
    """Resolve ``auto`` (CUDA when available), ``cpu``, ``cuda`` or a :class:`torch.device`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("The device is set to 'cuda' but no CUDA GPU is available here; choose 'cpu' or 'auto'.")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise DeviceError(f"Unknown device {device!r}; choose auto, cpu or cuda.") from exc


def _as_nchw(x: np.ndarray | Tensor, channels: int, what: str) -> Tensor:
    """[H, W], [H, W, C] numpy or [H, W] / [C, H, W] / [1, C, H, W] tensor → [1, C, H, W] float32 tensor."""
    if isinstance(x, np.ndarray):
        arr = x[..., None] if x.ndim == 2 else x
        if arr.ndim != 3 or arr.shape[-1] != channels:
            raise InputError(f"The {what} must be [H, W{', ' + str(channels) if channels > 1 else ''}], got {x.shape}.")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)[None]
    elif isinstance(x, Tensor):
        t = x
        while t.dim() < 4:
            t = t.unsqueeze(0)
        t = t.float()
    else:
        raise InputError(f"The {what} must be a numpy array or a torch tensor, got {type(x).__name__}.")
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != channels:
        raise InputError(f"The {what} must have {channels} channel(s), got shape {tuple(x.shape)}.")
    return t
