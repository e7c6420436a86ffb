"""What the engine consumes: one frame's pixels, and a source of frames for pre-roll."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class FrameInput:
    """One frame handed to the engine.

    Attributes:
        rgb: ``[H, W, 3]`` float32 (float16 accepted), display-referred sRGB in [0, 1], finite.
        matte: optional external prior (roto, keyer, another model): ``[h, w]`` float32 in
            [0, 1] at any resolution; resampled to the plate by the engine.
        pixel_aspect: width of a plate pixel over its height (2.0 for a 2x anamorphic plate). The prior
            network sees the plate desqueezed to square pixels, as it was trained; the refinement and the
            matte stay at the plate's own pixels.
    """

    rgb: np.ndarray
    matte: np.ndarray | None = None
    pixel_aspect: float = 1.0

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the plate."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


class FrameSource(Protocol):
    """A sequence the session can read frames from (for keyframe pre-roll).

    ``first_frame``/``last_frame`` bound the frames that exist; calling the source with a
    frame number returns that frame or raises :class:`~sparsemat.errors.InputError`.
    """

    @property
    def first_frame(self) -> int: ...

    @property
    def last_frame(self) -> int: ...

    def __call__(self, frame: int) -> FrameInput: ...


@dataclass
class ArraySource:
    """A :class:`FrameSource` over in-memory frames (tests, the UI, the demo).

    Attributes:
        frames: mapping frame number → :class:`FrameInput`.
    """

    frames: dict[int, FrameInput]

    @property
    def first_frame(self) -> int:
        return min(self.frames)

    @property
    def last_frame(self) -> int:
        return max(self.frames)

    def __call__(self, frame: int) -> FrameInput:
        from sparsemat.errors import MissingFrameError

        if frame not in self.frames:
            raise MissingFrameError(f"Frame {frame} is not in this sequence ({self.first_frame}-{self.last_frame}).")
        return self.frames[frame]
