"""The prior's output for the last few frames, reused when a frame is asked for again with the same prior.

An artist tweaking any knob that does not reach the prior network — edge width, refine strength, cascade levels,
the refiner model … — asks the engine for the same frame again. The prior's output is then what it was, and for a
recurrent prior (RVM) getting it again means running the prior over every frame since the last keyframe (its
pre-roll). A :class:`PriorMemo` keeps the low-resolution prior of the last :data:`CAPACITY` frames, keyed by the
frame number, the prior's settings (:meth:`Session._prior_key`: prior, resolution, keyframe interval, device,
model) and the low-resolution plate it saw, stored as float16 and compared bit for bit. A recurrent prior's output
at a frame depends only on those frames since the keyframe, so a reused prior equals a recomputed one exactly.

Kept by interactive sessions (the viewer, ``sparsemat ui``); batch renders see every frame once and keep none.
Memory: about 3 MB a frame at the 512 px prior resolution (plate as float16, prior as float32).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

#: Frames kept: a keyframe interval's worth, so scrubbing back and forth within one stays free.
CAPACITY = 8


@dataclass
class _Entry:
    key: str
    lr_rgb: torch.Tensor  # [1, 3, h, w] float16
    lr_prior: torch.Tensor  # [1, 1, h, w] float32


class PriorMemo:
    """Low-resolution prior outputs of the last :data:`CAPACITY` frames (see the module docstring)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[int, _Entry] = OrderedDict()

    def lookup(self, frame: int, key: str, lr_rgb: torch.Tensor) -> torch.Tensor | None:
        """The prior stored for ``frame`` under ``key`` from this very ``lr_rgb`` ([1, 3, h, w]), else None."""
        entry = self._entries.get(frame)
        if entry is None or entry.key != key or entry.lr_rgb.shape != lr_rgb.shape:
            return None
        if not torch.equal(entry.lr_rgb, lr_rgb.to(entry.lr_rgb.device, torch.float16)):
            return None
        self._entries.move_to_end(frame)
        return entry.lr_prior.clone()

    def store(self, frame: int, key: str, lr_rgb: torch.Tensor, lr_prior: torch.Tensor) -> None:
        """Keep ``lr_prior`` ([1, 1, h, w] float32 in [0, 1]) for ``frame``, dropping the least recently used."""
        self._entries[frame] = _Entry(key, lr_rgb.detach().to(torch.float16).clone(), lr_prior.detach().clone())
        self._entries.move_to_end(frame)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every output."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
