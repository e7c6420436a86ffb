"""Sparse layer modules: the same parameters run on every backend (dispatch on ``x.backend``).

Conv weights are ``[C_out, kh, kw, C_in]`` (spconv 2.x KRSC), biases ``[C_out]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparsemat.sparse import get_backend
from sparsemat.sparse.map import SparseMap


class _SparseConvBase(nn.Module):
    """Holds ``weight [C_out, k, k, C_in]`` and an optional ``bias [C_out]``; Kaiming-uniform init."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, kernel_size, kernel_size, in_channels))
        self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform (as ``nn.Conv2d``) over fan-in ``k*k*C_in``."""
        fan_in = self.in_channels * self.kernel_size**2
        bound = 1.0 / math.sqrt(fan_in)
        # fan_in of a [C_out, k, k, C_in] tensor is shape[1] * prod(shape[2:]) = k*k*C_in, as wanted.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, bias={self.bias is not None}"


class SubMConv2d(_SparseConvBase):
    """Submanifold k×k conv (odd k): output sites = input sites.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size.
        dilation: kernel dilation (padding is ``dilation * (k // 2)``).
        bias: add a learned bias.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1, bias: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, bias)
        self.dilation = dilation

    def forward(self, x: SparseMap) -> SparseMap:
        """``x: [sites, C_in]`` → ``[same sites, C_out]``."""
        return get_backend(x.backend).subm_conv(x, self.weight, self.bias, self.dilation)

    def macs(self, sites: int) -> float:
        """Multiply-accumulates for ``sites`` output sites."""
        return float(sites) * self.kernel_size**2 * self.in_channels * self.out_channels


class DownConv2d(_SparseConvBase):
    """Strided conv k3 s2 p1; registers ``key`` so an :class:`UpConv2d` can invert it."""

    def __init__(self, in_channels: int, out_channels: int, key: str, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, 3, bias)
        self.key = key

    def forward(self, x: SparseMap) -> SparseMap:
        """``x: [sites, C_in]`` at (H, W) → ``[maxpool(3,2,1) sites, C_out]`` at (ceil(H/2), ceil(W/2))."""
        return get_backend(x.backend).down_conv(x, self.weight, self.bias, self.key)

    def macs(self, sites: int) -> float:
        """Multiply-accumulates for ``sites`` output (coarse) sites."""
        return float(sites) * 9 * self.in_channels * self.out_channels


class UpConv2d(_SparseConvBase):
    """Inverse conv k3 s2 p1 of the :class:`DownConv2d` registered under ``key`` (restores its sites)."""

    def __init__(self, in_channels: int, out_channels: int, key: str, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 3, bias)
        self.key = key

    def forward(self, x: SparseMap) -> SparseMap:
        """``x`` on the coarse sites of ``key`` → the fine sites of ``key``, ``C_out`` channels."""
        return get_backend(x.backend).up_conv(x, self.weight, self.bias, self.key)

    def macs(self, sites: int) -> float:
        """Multiply-accumulates for ``sites`` output (fine) sites: on average 9/4 taps reach a fine site."""
        return float(sites) * 2.25 * self.in_channels * self.out_channels


class SparseBatchNorm(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over active sites (parameters and state-dict keys as BatchNorm1d)."""

    def forward(self, x: SparseMap) -> SparseMap:  # type: ignore[override]
        """Normalise ``[sites, C]`` features; statistics over active sites only in training."""
        return get_backend(x.backend).batch_norm(x, self)


class SparseReLU(nn.Module):
    """ReLU on active sites."""

    def forward(self, x: SparseMap) -> SparseMap:
        """Elementwise ``max(x, 0)``."""
        return get_backend(x.backend).map(x, F.relu)


class SparseLeakyReLU(nn.Module):
    """LeakyReLU on active sites (slope ``negative_slope`` for x < 0)."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: SparseMap) -> SparseMap:
        """Elementwise leaky ReLU."""
        slope = self.negative_slope
        return get_backend(x.backend).map(x, lambda f: F.leaky_relu(f, slope))


class SparseSigmoid(nn.Module):
    """Sigmoid on active sites (inactive dense sites stay 0, not 0.5)."""

    def forward(self, x: SparseMap) -> SparseMap:
        """Elementwise sigmoid → [0, 1]."""
        return get_backend(x.backend).map(x, torch.sigmoid)


def sparse_cat(a: SparseMap, b: SparseMap) -> SparseMap:
    """Channel concat of two maps on the same sites."""
    return get_backend(a.backend).cat(a, b)


def sparse_add(a: SparseMap, b: SparseMap) -> SparseMap:
    """Sum of two maps on the same sites."""
    return get_backend(a.backend).add(a, b)


def sparse_scale(x: SparseMap, w: Tensor) -> SparseMap:
    """Multiply each site's features by its batch row of ``w: [B, C]``."""
    return get_backend(x.backend).scale(x, w)
