"""Masked-dense reference backend: dense convs on ``[B, C, H, W]`` with inactive sites zeroed.

This is the executable definition of the sparse ops (see docs/architecture.md and method.md §9):

- submanifold conv = ``F.conv2d`` (weight ``w.permute(0, 3, 1, 2)``, same padding), masked;
- strided conv = ``F.conv2d(stride 2, padding 1)``, masked by ``max_pool2d(mask, 3, 2, 1)``;
- inverse conv = ``F.conv_transpose2d(stride 2, padding 1, output_size=fine)`` with weight
  ``w.permute(3, 0, 1, 2)``, masked by the fine mask of the key;
- batch norm statistics over active sites only (training), affine with running stats (eval).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparsemat.sparse.base import Backend
from sparsemat.sparse.map import KeyEntry, KeyRegistry, SparseMap


def _mask(x: SparseMap) -> Tensor:
    return cast(Tensor, x.sites)


class DenseBackend(Backend):
    """Masked dense reference; features ``[B, C, H, W]``, ``sites`` = mask ``[B, 1, H, W]`` float."""

    name = "dense"

    def from_coords(
        self,
        coords: Tensor,
        feats: Tensor,
        spatial_shape: tuple[int, int],
        batch_size: int,
        registry: KeyRegistry | None = None,
    ) -> SparseMap:
        """See :meth:`Backend.from_coords`."""
        h, w = int(spatial_shape[0]), int(spatial_shape[1])
        c = coords.to(torch.int64)
        dense = feats.new_zeros(batch_size, h, w, feats.shape[1])
        dense = dense.index_put((c[:, 0], c[:, 1], c[:, 2]), feats)
        mask = feats.new_zeros(batch_size, 1, h, w)
        mask[c[:, 0], 0, c[:, 1], c[:, 2]] = 1.0
        return SparseMap(
            features=dense.permute(0, 3, 1, 2).contiguous(),
            backend=self.name,
            spatial_shape=(h, w),
            batch_size=int(batch_size),
            sites=mask,
            registry=registry if registry is not None else KeyRegistry(),
        )

    def values(self, x: SparseMap) -> tuple[Tensor, Tensor]:
        """See :meth:`Backend.values`."""
        c = torch.nonzero(_mask(x)[:, 0] > 0)
        f = x.features.permute(0, 2, 3, 1)[c[:, 0], c[:, 1], c[:, 2]]
        return c, f

    def coords(self, x: SparseMap) -> Tensor:
        """See :meth:`Backend.coords`."""
        return torch.nonzero(_mask(x)[:, 0] > 0)

    def subm_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, dilation: int = 1) -> SparseMap:
        """See :meth:`Backend.subm_conv`."""
        k = int(w.shape[1])
        pad = dilation * (k // 2)
        out = F.conv2d(x.features, w.permute(0, 3, 1, 2), b, padding=pad, dilation=dilation)
        return x.replace(out * _mask(x))

    def down_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """See :meth:`Backend.down_conv`."""
        entry = x.registry.get(key)
        if entry is None or entry.fine is not x.sites:
            coarse = F.max_pool2d(_mask(x), 3, 2, 1)
            entry = x.registry.register(
                key, KeyEntry(x.sites, coarse, x.spatial_shape, (int(coarse.shape[2]), int(coarse.shape[3])))
            )
        coarse_mask = cast(Tensor, entry.coarse)
        out = F.conv2d(x.features, w.permute(0, 3, 1, 2), b, stride=2, padding=1)
        return x.moved(out * coarse_mask, coarse_mask, entry.coarse_shape, +1)

    def up_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """See :meth:`Backend.up_conv`."""
        entry = x.registry.coarse_entry(key, x.sites)
        fine_mask = cast(Tensor, entry.fine)
        out = F.conv_transpose2d(
            x.features, w.permute(3, 0, 1, 2), b, stride=2, padding=1, output_padding=_out_pad(entry)
        )
        return x.moved(out * fine_mask, fine_mask, entry.fine_shape, -1)

    def batch_norm(self, x: SparseMap, bn: nn.BatchNorm1d) -> SparseMap:
        """See :meth:`Backend.batch_norm` (statistics over active sites only in training)."""
        mask = _mask(x)
        f = x.features
        shape = (1, -1, 1, 1)
        if bn.training or bn.running_mean is None:
            n = mask.sum()
            mean = (f * mask).sum(dim=(0, 2, 3)) / n
            var = (((f - mean.view(shape)) * mask) ** 2).sum(dim=(0, 2, 3)) / n
            if bn.training and bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None:
                with torch.no_grad():
                    assert bn.num_batches_tracked is not None
                    bn.num_batches_tracked.add_(1)
                    m = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
                    unbiased = var * n / (n - 1).clamp(min=1)
                    bn.running_mean.mul_(1 - m).add_(mean.detach() * m)
                    bn.running_var.mul_(1 - m).add_(unbiased.detach() * m)
        else:
            assert bn.running_var is not None
            mean, var = bn.running_mean, bn.running_var
        y = (f - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
        if bn.affine:
            y = y * bn.weight.view(shape) + bn.bias.view(shape)
        return x.replace(y * mask)

    def map(self, x: SparseMap, fn: Callable[[Tensor], Tensor]) -> SparseMap:
        """See :meth:`Backend.map`."""
        return x.replace(fn(x.features) * _mask(x))

    def cat(self, a: SparseMap, b: SparseMap) -> SparseMap:
        """See :meth:`Backend.cat`."""
        return a.replace(torch.cat([a.features, b.features], 1))

    def scale(self, x: SparseMap, w: Tensor) -> SparseMap:
        """See :meth:`Backend.scale`."""
        return x.replace(x.features * w[:, :, None, None])


def _out_pad(entry: KeyEntry) -> tuple[int, int]:
    """output_padding making conv_transpose2d(s2, p1, k3) return exactly the fine shape."""
    (h, w), (ho, wo) = entry.fine_shape, entry.coarse_shape
    return (h - (2 * ho - 1), w - (2 * wo - 1))
