"""Sparse tensors (:class:`SparseMap`), rulebooks, the three backends and the sparse layers.

Backends: ``torch`` (pure PyTorch gather/matmul; CPU default), ``dense`` (masked dense
reference) and ``spconv`` (spconv 2.x, CUDA only). :func:`get_backend` resolves ``auto``.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

from sparsemat.errors import DeviceError
from sparsemat.sparse.base import Backend
from sparsemat.sparse.map import KeyEntry, KeyRegistry, SiteSet, SparseMap

BACKENDS = ("torch", "dense", "spconv")

_INSTANCES: dict[str, Backend] = {}


def spconv_available() -> bool:
    """True when the ``spconv`` package can be imported (it is not imported here)."""
    return importlib.util.find_spec("spconv") is not None


def get_backend(name: str = "auto", device: torch.device | str | None = None) -> Backend:
    """Return the backend singleton called ``name``.

    Args:
        name: ``"torch"``, ``"dense"``, ``"spconv"`` or ``"auto"`` (``spconv`` on a CUDA device
            when spconv is installed, else ``torch``).
        device: the device the tensors will live on (only used by ``auto``).

    Raises:
        DeviceError: unknown name.
    """
    if name == "auto":
        dev = torch.device(device) if device is not None else torch.device("cpu")
        name = "spconv" if dev.type == "cuda" and spconv_available() else "torch"
    inst = _INSTANCES.get(name)
    if inst is not None:
        return inst
    if name == "torch":
        from sparsemat.sparse.backend_torch import TorchBackend

        inst = TorchBackend()
    elif name == "dense":
        from sparsemat.sparse.backend_dense import DenseBackend

        inst = DenseBackend()
    elif name == "spconv":
        from sparsemat.sparse.backend_spconv import SpconvBackend

        inst = SpconvBackend()
    else:
        raise DeviceError(f"Unknown sparse backend {name!r}; choose one of auto, {', '.join(BACKENDS)}.")
    _INSTANCES[name] = inst
    return inst


def from_coords(
    coords: Tensor,
    feats: Tensor,
    spatial_shape: tuple[int, int],
    batch_size: int,
    backend: str = "torch",
    registry: KeyRegistry | None = None,
) -> SparseMap:
    """Build a :class:`SparseMap` on ``backend``.

    Args:
        coords: ``[N, 3] int64 (b, y, x)`` in canonical (lexicographic) order, e.g.
            ``torch.nonzero(mask[:, 0])``.
        feats: ``[N, C]`` float features in the same row order.
        spatial_shape: ``(H, W)``.
        batch_size: ``B``.
        backend: backend name (``auto`` resolves on ``feats.device``).
        registry: key registry to share (a new one by default, i.e. a new network pass).
    """
    return get_backend(backend, feats.device).from_coords(coords, feats, spatial_shape, batch_size, registry)


def values(x: SparseMap) -> tuple[Tensor, Tensor]:
    """``(coords [N, 3] int64 canonical (b, y, x), feats [N, C])`` of any backend's map."""
    return get_backend(x.backend).values(x)


def to_dense(x: SparseMap) -> Tensor:
    """``[B, C, H, W]`` features with zeros at inactive sites."""
    if x.backend == "dense":
        return x.features
    coords, feats = values(x)
    h, w = x.spatial_shape
    out = feats.new_zeros(x.batch_size, h, w, feats.shape[1])
    out[coords[:, 0], coords[:, 1], coords[:, 2]] = feats
    return out.permute(0, 3, 1, 2)


__all__ = [
    "BACKENDS",
    "Backend",
    "KeyEntry",
    "KeyRegistry",
    "SiteSet",
    "SparseMap",
    "from_coords",
    "get_backend",
    "spconv_available",
    "to_dense",
    "values",
]
