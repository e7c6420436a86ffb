"""Spatial and temporal sparsity maps at full plate resolution.

All maps are computed with torch on the engine's device, as separable max-pools over
``float32`` planes (one plane at a time, never a multi-channel full-resolution stack), and
returned as ``bool`` tensors. At 8K (7680×4320) one float plane is 133 MB.

Definitions (see docs/method.md for how they relate to the official code):

* **Spatial band** ``B = dilate_k(0.01 < α↑ < 0.99)`` where ``α↑`` is the prior upsampled to
  full resolution, exactly as the official code (thresholds on the upsampled alpha, pooling at
  full resolution).
* **Temporal change** ``T = dilate_k(box3(mean_rgb |I_t − I_{t−1}|) > threshold)`` with images
  display-referred sRGB in [0, 1]. The 3×3 box keeps single-pixel grain from triggering
  refinement; ``threshold`` is therefore a mean absolute colour difference in display units.
* **Active map** ``M = B ∩ T`` (the paper's spatio-temporal map), or ``M = B`` without history.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BAND_LOW = 0.01
BAND_HIGH = 0.99


def dilate(mask: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Binary dilation with a square ``kernel_size`` window (max-pool, stride 1, 'same' size).

    Args:
        mask: ``[H, W]`` bool.
        kernel_size: odd window width in pixels; 1 returns the mask unchanged.

    Returns:
        ``[H, W]`` bool.
    """
    if kernel_size <= 1:
        return mask.clone()
    pad = kernel_size // 2
    plane = mask.to(torch.float32)[None, None]
    # Separable: a k×k max equals a 1×k max followed by a k×1 max.
    plane = F.max_pool2d(plane, (1, kernel_size), stride=1, padding=(0, pad))
    plane = F.max_pool2d(plane, (kernel_size, 1), stride=1, padding=(pad, 0))
    return plane[0, 0] > 0.5


def spatial_band(prior_hr: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Transition band of the upsampled prior, dilated by ``kernel_size``.

    Args:
        prior_hr: ``[H, W]`` float32 alpha in [0, 1] at full resolution.
        kernel_size: odd dilation width.

    Returns:
        ``[H, W]`` bool; True where the pixel should be refined.
    """
    band = (prior_hr > BAND_LOW) & (prior_hr < BAND_HIGH)
    return dilate(band, kernel_size)


def temporal_change(rgb: torch.Tensor, prev_rgb: torch.Tensor, threshold: float, kernel_size: int) -> torch.Tensor:
    """Pixels whose colour changed since the previous frame, dilated by ``kernel_size``.

    Args:
        rgb: ``[H, W, 3]`` current frame, display-referred sRGB in [0, 1] (float16 or float32).
        prev_rgb: ``[H, W, 3]`` previous frame, same size and encoding.
        threshold: mean absolute RGB difference in [0, 1] above which a pixel counts as changed.
        kernel_size: odd dilation width.

    Returns:
        ``[H, W]`` bool; True where the plate changed.
    """
    diff = torch.zeros(rgb.shape[:2], dtype=torch.float32, device=rgb.device)
    for c in range(3):  # one channel at a time keeps peak memory at one float plane
        diff += (rgb[..., c].to(torch.float32) - prev_rgb[..., c].to(torch.float32)).abs_()
    diff /= 3.0
    diff = F.avg_pool2d(diff[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]
    return dilate(diff > threshold, kernel_size)
