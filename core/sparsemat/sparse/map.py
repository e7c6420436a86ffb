"""`SparseMap`, the one sparse-tensor type of every backend, and the per-pass `KeyRegistry`.

A map is a set of active sites ``(b, y, x)`` in a ``[B, H, W]`` grid with ``C`` features each.
The feature layout depends on the backend:

- ``torch`` / ``spconv``: ``features [N, C]`` in the row order of ``sites`` (canonical
  lexicographic ``(b, y, x)`` order for ``torch``; spconv's own order for ``spconv``).
- ``dense``: ``features [B, C, H, W]`` with zeros at inactive sites; ``sites`` is the float
  mask ``[B, 1, H, W]`` (1 active, 0 inactive).

Maps of one network pass share a :class:`KeyRegistry`, which remembers the fine and coarse
site sets of every strided conv by its key, so the matching inverse conv restores the fine
sites exactly (spconv's ``indice_key``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor


class SiteSet:
    """Active sites of one level for the ``torch`` backend, plus its cached rulebooks.

    Args:
        coords: ``[N, 3] int64 (b, y, x)``, sorted lexicographically, unique.
        spatial_shape: ``(H, W)`` of the grid.
        batch_size: ``B``.
    """

    def __init__(self, coords: Tensor, spatial_shape: tuple[int, int], batch_size: int) -> None:
        self.coords = coords.to(torch.int64).contiguous()
        self.spatial_shape = (int(spatial_shape[0]), int(spatial_shape[1]))
        self.batch_size = int(batch_size)
        self._keys: Tensor | None = None
        self.cache: dict[tuple[Any, ...], Any] = {}

    @property
    def num(self) -> int:
        """Number of active sites ``N``."""
        return int(self.coords.shape[0])

    @property
    def keys(self) -> Tensor:
        """Linear keys ``(b*H + y)*W + x``: ``[N] int64``, strictly increasing (canonical order)."""
        if self._keys is None:
            h, w = self.spatial_shape
            c = self.coords
            self._keys = ((c[:, 0] * h + c[:, 1]) * w + c[:, 2]).contiguous()
        return self._keys


@dataclass
class KeyEntry:
    """Fine and coarse structures of one strided conv (backend-specific objects)."""

    fine: Any
    coarse: Any
    fine_shape: tuple[int, int]
    coarse_shape: tuple[int, int]
    cache: dict[str, Any] = field(default_factory=dict)


class KeyRegistry:
    """Per-forward map from indice keys to :class:`KeyEntry` (shared by all maps of a pass)."""

    def __init__(self) -> None:
        self._entries: dict[str, KeyEntry] = {}

    def get(self, key: str) -> KeyEntry | None:
        """Return the entry registered under ``key``, or None."""
        return self._entries.get(key)

    def register(self, key: str, entry: KeyEntry) -> KeyEntry:
        """Register ``entry`` under ``key`` (an existing key must describe the same fine sites)."""
        old = self._entries.get(key)
        if old is not None:
            if old.fine is not entry.fine:
                raise ValueError(f"indice key {key!r} is already registered for a different site set")
            return old
        self._entries[key] = entry
        return entry

    def coarse_entry(self, key: str, sites: Any) -> KeyEntry:
        """The entry an inverse conv on ``sites`` needs: registered under ``key`` with these coarse sites.

        Raises:
            ValueError: no down conv registered ``key`` producing ``sites``.
        """
        entry = self._entries.get(key)
        if entry is None or entry.coarse is not sites:
            raise ValueError(f"up_conv: key {key!r} was not registered by a down_conv producing these sites")
        return entry

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        """Registered keys in registration order."""
        return list(self._entries)


@dataclass
class SparseMap:
    """Sparse feature map shared by all backends (see the module docstring for layouts).

    Attributes:
        features: ``[N, C]`` (torch/spconv) or ``[B, C, H, W]`` (dense), float.
        backend: ``"torch"``, ``"dense"`` or ``"spconv"``.
        spatial_shape: ``(H, W)``.
        batch_size: ``B``.
        sites: :class:`SiteSet` (torch), mask ``[B, 1, H, W]`` float (dense) or an
            ``spconv.SparseConvTensor`` (spconv) describing the active sites.
        registry: the pass's :class:`KeyRegistry`.
        level: number of strided convs applied minus inverse convs (0 = input resolution).
    """

    features: Tensor
    backend: str
    spatial_shape: tuple[int, int]
    batch_size: int
    sites: Any
    registry: KeyRegistry = field(default_factory=KeyRegistry)
    level: int = 0

    @property
    def num_channels(self) -> int:
        """Feature channels ``C``."""
        return int(self.features.shape[1])

    def replace(self, features: Tensor) -> SparseMap:
        """Same sites, new features (same layout as ``self.features``)."""
        return replace(self, features=features)

    def moved(self, features: Tensor, sites: Any, spatial_shape: tuple[int, int], step: int) -> SparseMap:
        """The output of a strided (``step`` +1) or inverse (``step`` −1) conv: new sites and level."""
        return replace(self, features=features, sites=sites, spatial_shape=spatial_shape, level=self.level + step)

    def map(self, fn: Callable[[Tensor], Tensor]) -> SparseMap:
        """Elementwise ``fn`` on the features (channel dim is 1 in every layout)."""
        from sparsemat.sparse import get_backend

        return get_backend(self.backend).map(self, fn)
