"""The operation set every sparse backend implements (see docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from sparsemat.sparse.map import KeyRegistry, SparseMap


class Backend:
    """Abstract sparse backend. Weights are ``[C_out, kh, kw, C_in]``, biases ``[C_out]``."""

    name: str = "abstract"

    def from_coords(
        self,
        coords: Tensor,
        feats: Tensor,
        spatial_shape: tuple[int, int],
        batch_size: int,
        registry: KeyRegistry | None = None,
    ) -> SparseMap:
        """Build a map from canonical ``coords [N, 3] int64 (b, y, x)`` and ``feats [N, C]``."""
        raise NotImplementedError

    def values(self, x: SparseMap) -> tuple[Tensor, Tensor]:
        """``(coords [N, 3] int64 canonical (b, y, x), feats [N, C])``."""
        raise NotImplementedError

    def coords(self, x: SparseMap) -> Tensor:
        """Active sites ``[N, 3] int64`` in canonical order (no features)."""
        return self.values(x)[0]

    def subm_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, dilation: int = 1) -> SparseMap:
        """Submanifold k×k conv (odd k, ``dilation``): same sites in, same sites out."""
        raise NotImplementedError

    def down_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """k3 s2 p1 conv; output sites = maxpool(3, 2, 1) of the input's; registers ``key``."""
        raise NotImplementedError

    def up_conv(self, x: SparseMap, w: Tensor, b: Tensor | None, key: str) -> SparseMap:
        """Inverse of the ``down_conv`` registered under ``key``: restores its fine sites exactly."""
        raise NotImplementedError

    def batch_norm(self, x: SparseMap, bn: nn.BatchNorm1d) -> SparseMap:
        """BatchNorm over active sites (batch statistics in training, affine with running stats in eval)."""
        raise NotImplementedError

    def map(self, x: SparseMap, fn: Callable[[Tensor], Tensor]) -> SparseMap:
        """Elementwise ``fn`` on the features (channel dim 1); inactive sites stay empty/zero."""
        raise NotImplementedError

    def cat(self, a: SparseMap, b: SparseMap) -> SparseMap:
        """Channel concat ``[a, b]`` of two maps on the same sites."""
        raise NotImplementedError

    def add(self, a: SparseMap, b: SparseMap) -> SparseMap:
        """Sum of two maps on the same sites (residual connections)."""
        return a.replace(a.features + b.features)

    def scale(self, x: SparseMap, w: Tensor) -> SparseMap:
        """Multiply every site by its batch row of ``w: [B, C]``."""
        raise NotImplementedError
