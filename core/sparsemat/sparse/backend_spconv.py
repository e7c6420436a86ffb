"""spconv 2.x backend (CUDA only): spconv modules built lazily that share SparseMat's weights.

``sites`` of a map is the ``spconv.pytorch.SparseConvTensor``; ``features [N, C]`` follow its
row order (spconv's, not necessarily canonical: :meth:`SpconvBackend.values` sorts).
spconv's CPU build is never used (it is a debug build with silent races; deps.md §2): CPU
tensors raise :class:`~sparsemat.errors.DeviceError`. Biases are added by hand (bias-free spconv
modules), which also sidesteps spconv's fused-bias inference path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sparsemat.errors import DeviceError
from sparsemat.sparse.backend_torch import _bn_rows
from sparsemat.sparse.base import Backend
from sparsemat.sparse.map import KeyRegistry, SparseMap

_INSTALL_HINT = (
    "The spconv backend needs an NVIDIA GPU and spconv 2.x for your CUDA version, e.g. "
    "`pip install spconv-cu121` (or `pip install sparsemat[cuda]`). Use backend 'torch' otherwise."
)


def _import_spconv() -> Any:
    try:
        import spconv.pytorch as spconv  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise DeviceError(f"spconv is not installed. {_INSTALL_HINT}") from exc
    return spconv


def _check_cuda(t: Tensor) -> None:
    if t.device.type != "cuda":
        raise DeviceError(
            f"The spconv backend runs on CUDA tensors only (got a {t.device.type} tensor); "
            "spconv's CPU build is a debug build with known silent errors. Use backend 'torch' on CPU."
        )


class SpconvBackend(Backend):
    """spconv 2.x execution of the sparse ops (CUDA tensors only)."""

    name = "spconv"

    def __init__(self) -> None:
        self._sp = _import_spconv()
        self._modules: dict[tuple[Any, ...], nn.Module] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _module(self, kind: str, w: Tensor, dilation: int, key: str | None) -> nn.Module:
        co, k, _, ci = (int(s) for s in w.shape)
        ck = (kind, ci, co, k, dilation, key)
        mod = self._modules.get(ck)
        if mod is None:
            sp = self._sp
            if kind == "subm":
                mod = sp.SubMConv2d(ci, co, k, 1, dilation * (k // 2), dilation, bias=False, indice_key=key)
            elif kind == "down":
                mod = sp.SparseConv2d(ci, co, 3, 2, 1, bias=False, indice_key=key)
            else:
                mod = sp.SparseInverseConv2d(ci, co, 3, indice_key=key, bias=False)
            del mod.weight  # the weight is ours: set per call, never copied
            self._modules[ck] = mod
        mod.weight = w
        mod.train(torch.is_grad_enabled())
        return mod

    def _tensor(self, x: SparseMap) -> Any:
        _check_cuda(x.features)
        return x.sites.replace_feature(x.features)

    def _wrap(self, x: SparseMap, t: Any, b: Tensor | None, level: int) -> SparseMap:
        f = t.features
        if b is not None:
            f = f + b
        return x.moved(f, t, (int(t.spatial_shape[0]), int(t.spatial_shape[1])), level - x.level)

    # -- ops -------------------------------------------------------------------------------------
    def from_coords(
        self,
        coords: Tensor,
        feats: Tensor,
        spatial_shape: tuple[int, int],
        batch_size: int,
        registry: KeyRegistry | None = None,
    ) -> SparseMap:
        """See :meth:`Backend.from_coords` (CUDA tensors only)."""
        _check_cuda(feats)
        h, w = int(spatial_shape[0]), int(spatial_shape[1])
        t = self._sp.SparseConvTensor(feats, coords.to(feats.device).int().contiguous(), [h, w], int(batch_size))
        return SparseMap(
            features=feats,
            backend=self.name,
            spatial_shape=(h, w),
            batch_size=int(batch_size),
            sites=t,
            registry=registry if registry is not None else KeyRegistry(),
        )

    def _order(self, x: SparseMap) -> tuple[Tensor, Tensor]:
        idx = x.sites.indices.long()
        h, w = x.spatial_shape
        keys = (idx[:, 0] * h + idx[:, 1]) * w + idx[:, 2]
        perm = torch.argsort(keys)
        return idx[perm], perm

    def values(self, x: SparseMap) -> tuple[Tensor, Tensor]:
        """See :meth:`Backend.values` (rows sorted into canonical order)."""
        coords, perm = self._order(x)
        return coords, x.features[perm]

    def coords(self, x: SparseMap) -> Tensor:
        """See :meth:`Backend.coords`."""
        return self._order(x)[0]

    def subm_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, dilation: int = 1) -> SparseMap:
        """See :meth:`Backend.subm_conv`."""
        k = int(w.shape[1])
        if k == 1:
            f = x.features @ w[:, 0, 0, :].t()
            return x.replace(f + b if b is not None else f)
        key = f"subm{x.level}_k{k}_d{dilation}"
        t = self._module("subm", w, dilation, key)(self._tensor(x))
        return self._wrap(x, t, b, x.level)

    def down_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """See :meth:`Backend.down_conv`."""
        t = self._module("down", w, 1, key)(self._tensor(x))
        return self._wrap(x, t, b, x.level + 1)

    def up_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """See :meth:`Backend.up_conv`."""
        t = self._module("up", w, 1, key)(self._tensor(x))
        return self._wrap(x, t, b, x.level - 1)

    def batch_norm(self, x: SparseMap, bn: nn.BatchNorm1d) -> SparseMap:
        """See :meth:`Backend.batch_norm`."""
        return x.replace(_bn_rows(x.features, bn))

    def map(self, x: SparseMap, fn: Callable[[Tensor], Tensor]) -> SparseMap:
        """See :meth:`Backend.map`."""
        return x.replace(fn(x.features))

    def cat(self, a: SparseMap, b: SparseMap) -> SparseMap:
        """See :meth:`Backend.cat` (both maps must share spconv's row order)."""
        if a.features.shape[0] != b.features.shape[0]:
            raise ValueError("cat: maps are on different site sets")
        return a.replace(torch.cat([a.features, b.features], 1))

    def scale(self, x: SparseMap, w: Tensor) -> SparseMap:
        """See :meth:`Backend.scale`."""
        return x.replace(x.features * w.index_select(0, x.sites.indices[:, 0].long()))
