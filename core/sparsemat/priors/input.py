"""``input`` prior: an external matte (roto, keyer, another matting tool) at any resolution."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from sparsemat.errors import InputError
from sparsemat.priors.base import _as_nchw, check_lr_rgb, resize_alpha, sanitize_alpha


class InputPrior:
    """Uses the matte given for each frame, resampled to the requested low-resolution size.

    Give the frame's matte with :meth:`set_matte` (or ``predict(lr_rgb, matte=...)``) before each
    :meth:`predict`. The matte is consumed by ``predict`` so a stale matte is never reused for the
    next frame.
    """

    name = "input"
    recurrent = False

    def __init__(self) -> None:
        self._matte: Tensor | None = None

    def set_matte(self, matte: np.ndarray | Tensor) -> None:
        """Give the external matte of the next frame.

        Args:
            matte: [h, w] or [h, w, 1] numpy, or [h, w] / [1, h, w] / [1, 1, h, w] tensor; float
                alpha in [0, 1] (values outside are clipped with an :class:`InputWarning`); any size.
        """
        t = _as_nchw(matte, channels=1, what="matte")
        if t.shape[-1] == 0 or t.shape[-2] == 0:
            raise InputError("The matte is empty (0 pixels).")
        self._matte = sanitize_alpha(t, "The matte input")

    def reset(self) -> None:
        """Drop the pending matte (the input prior has no other state)."""
        self._matte = None

    def predict(self, lr_rgb: Tensor, matte: np.ndarray | Tensor | None = None) -> Tensor:
        """Return the given matte at the size of ``lr_rgb``.

        Args:
            lr_rgb: [1, 3, h, w] float32 display sRGB in [0, 1]; only its size and device are used.
            matte: optional matte for this frame (same forms as :meth:`set_matte`).

        Returns:
            [1, 1, h, w] float32 in [0, 1] on ``lr_rgb``'s device.
        """
        check_lr_rgb(lr_rgb, self.name)
        if matte is not None:
            self.set_matte(matte)
        if self._matte is None:
            raise InputError(
                "The prior is set to 'input' but no matte was given for this frame: connect the Matte "
                "input (or pass --matte), or choose another prior."
            )
        pha, self._matte = self._matte, None
        return resize_alpha(pha.to(lr_rgb.device), (lr_rgb.shape[-2], lr_rgb.shape[-1]))
