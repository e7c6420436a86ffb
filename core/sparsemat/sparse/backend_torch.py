"""Pure-PyTorch sparse backend: gather/matmul over active sites (CPU and CUDA, autograd).

Neighbour tables come from :mod:`sparsemat.sparse.rulebook` (sorted linear keys +
``searchsorted``), are built once per level and cached on the level's :class:`SiteSet`
(submanifold tables) or on the :class:`KeyEntry` of a strided conv (down/up tables).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparsemat.sparse import rulebook as rb
from sparsemat.sparse.base import Backend
from sparsemat.sparse.map import KeyEntry, KeyRegistry, SiteSet, SparseMap


def _sites(x: SparseMap) -> SiteSet:
    return cast(SiteSet, x.sites)


class TorchBackend(Backend):
    """Gather9 sparse convolution in plain PyTorch; features ``[N, C]`` in canonical order."""

    name = "torch"

    def from_coords(
        self,
        coords: Tensor,
        feats: Tensor,
        spatial_shape: tuple[int, int],
        batch_size: int,
        registry: KeyRegistry | None = None,
    ) -> SparseMap:
        """See :meth:`Backend.from_coords`; ``coords`` must be canonical (as ``torch.nonzero``)."""
        sites = SiteSet(coords, spatial_shape, batch_size)
        return SparseMap(
            features=feats,
            backend=self.name,
            spatial_shape=sites.spatial_shape,
            batch_size=sites.batch_size,
            sites=sites,
            registry=registry if registry is not None else KeyRegistry(),
        )

    def values(self, x: SparseMap) -> tuple[Tensor, Tensor]:
        """See :meth:`Backend.values`."""
        return _sites(x).coords, x.features

    def coords(self, x: SparseMap) -> Tensor:
        """See :meth:`Backend.coords`."""
        return _sites(x).coords

    def subm_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, dilation: int = 1) -> SparseMap:
        """See :meth:`Backend.subm_conv`."""
        k = int(w.shape[1])
        if k == 1:
            out = x.features @ w[:, 0, 0, :].t()
            return x.replace(out + b if b is not None else out)
        table = rb.subm_table(_sites(x), k, dilation)
        out = rb.gather_matmul(rb.pad_zero_row(x.features), table, rb.conv_wmat(w), b)
        return x.replace(out)

    def _down_entry(self, x: SparseMap, key: str) -> KeyEntry:
        fine = _sites(x)
        entry = x.registry.get(key)
        if entry is not None and entry.fine is fine:
            return entry
        coarse = rb.down_sites(fine)
        entry = KeyEntry(fine, coarse, fine.spatial_shape, coarse.spatial_shape)
        return x.registry.register(key, entry)

    def down_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """See :meth:`Backend.down_conv`."""
        entry = self._down_entry(x, key)
        fine, coarse = cast(SiteSet, entry.fine), cast(SiteSet, entry.coarse)
        table = entry.cache.get("down")
        if table is None:
            table = entry.cache["down"] = rb.down_table(fine, coarse)
        out = rb.gather_matmul(rb.pad_zero_row(x.features), table, rb.conv_wmat(w), b)
        return x.moved(out, coarse, coarse.spatial_shape, +1)

    def up_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """See :meth:`Backend.up_conv`."""
        entry = x.registry.coarse_entry(key, x.sites)
        fine, coarse = cast(SiteSet, entry.fine), cast(SiteSet, entry.coarse)
        tables = entry.cache.get("up")
        if tables is None:
            tables = entry.cache["up"] = rb.up_tables(fine, coarse)
        fpad = rb.pad_zero_row(x.features)
        co = int(w.shape[0])
        out = x.features.new_empty(fine.num, co)
        for rows, table, taps in tables:
            out.index_copy_(0, rows, rb.gather_matmul(fpad, table, rb.conv_wmat(w, taps), b))
        return x.moved(out, fine, fine.spatial_shape, -1)

    def batch_norm(self, x: SparseMap, bn: nn.BatchNorm1d) -> SparseMap:
        """See :meth:`Backend.batch_norm`."""
        return x.replace(_bn_rows(x.features, bn))

    def map(self, x: SparseMap, fn: Callable[[Tensor], Tensor]) -> SparseMap:
        """See :meth:`Backend.map`."""
        return x.replace(fn(x.features))

    def cat(self, a: SparseMap, b: SparseMap) -> SparseMap:
        """See :meth:`Backend.cat`."""
        if a.sites is not b.sites and not torch.equal(_sites(a).coords, _sites(b).coords):
            raise ValueError("cat: maps are on different site sets")
        return a.replace(torch.cat([a.features, b.features], 1))

    def add(self, a: SparseMap, b: SparseMap) -> SparseMap:
        """See :meth:`Backend.add`."""
        if a.sites is not b.sites and not torch.equal(_sites(a).coords, _sites(b).coords):
            raise ValueError("add: maps are on different site sets")
        return a.replace(a.features + b.features)

    def scale(self, x: SparseMap, w: Tensor) -> SparseMap:
        """See :meth:`Backend.scale`."""
        bidx = _sites(x).coords[:, 0]
        return x.replace(x.features * w.index_select(0, bidx))


def _bn_rows(feats: Tensor, bn: nn.BatchNorm1d) -> Tensor:
    """``nn.BatchNorm1d`` semantics on ``[N, C]`` rows (shared by the torch and spconv backends)."""
    use_batch = bn.training or bn.running_mean is None
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(
        feats,
        bn.running_mean if not bn.training or bn.track_running_stats else None,
        bn.running_var if not bn.training or bn.track_running_stats else None,
        bn.weight,
        bn.bias,
        use_batch,
        momentum,
        bn.eps,
    )
