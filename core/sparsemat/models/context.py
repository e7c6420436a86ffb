"""Prior-agnostic context for the SHM: a small dense :class:`ContextEncoder` and :class:`MaskedSE`.

The official SHM gates its bottleneck with the LPN's ``dec16x`` features; SparseMat's SHM
computes its own context from the low-res plate and prior, so any prior (built-in, ONNX, roto)
works. An official checkpoint passes the LPN's ``ctx`` explicitly instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ContextEncoder(nn.Module):
    """Dense CNN: ``[lr_rgb*2-1, lr_prior*2-1]`` (B, 4, h, w) → ``ctx`` (B, C, ~h/16, ~w/16).

    Four 3×3 stride-2 convs (+ReLU) then a 1×1 conv; output size ``ceil`` halved four times.

    Args:
        out_channels: context channels (32 as the official Masked-SE).
        widths: channels of the four strided convs.
    """

    def __init__(self, out_channels: int = 32, widths: tuple[int, int, int, int] = (16, 24, 32, 32)) -> None:
        super().__init__()
        chans = (4, *widths)
        self.chans = chans
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1) for i in range(4))
        self.proj = nn.Conv2d(chans[-1], out_channels, 1)
        self.out_channels = out_channels

    def forward(self, lr_rgb: Tensor, lr_prior: Tensor) -> Tensor:
        """Args: ``lr_rgb [B, 3, h, w]`` sRGB in [0, 1]; ``lr_prior [B, 1, h, w]`` alpha in [0, 1].

        Returns: ``ctx [B, out_channels, ceil(h/16), ceil(w/16)]`` float32.
        """
        x = torch.cat([lr_rgb * 2 - 1, lr_prior * 2 - 1], 1)
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.proj(x)  # type: ignore[no-any-return]

    def macs(self, size: tuple[int, int]) -> float:
        """Multiply-accumulates of one pass on a low-res input of ``size = (h, w)``."""
        h, w = size
        total = 0.0
        for i in range(4):
            h, w = (h + 1) // 2, (w + 1) // 2
            total += h * w * 9 * self.chans[i] * self.chans[i + 1]
        return total + h * w * self.chans[-1] * self.out_channels


class MaskedSE(nn.Module):
    """Masked squeeze-and-excitation (official ``SparseCAM``): per-batch channel gates from ``ctx``.

    ``m`` = prior resized to ctx size; ``fg = mean(ctx*m)``, ``bg = mean(ctx*(1-m))`` (plain means,
    not normalised by the mask area, as official); each → 1×1 + ReLU; concat → 1×1 → sigmoid.

    Args:
        channels: gated feature channels ``C`` (the SHM bottleneck).
        ctx_channels: context channels (32).
    """

    def __init__(self, channels: int, ctx_channels: int = 32) -> None:
        super().__init__()
        self.fg = nn.Conv2d(ctx_channels, ctx_channels, 1)
        self.bg = nn.Conv2d(ctx_channels, ctx_channels, 1)
        self.gate = nn.Conv2d(2 * ctx_channels, channels, 1)

    def forward(self, ctx: Tensor, lr_prior: Tensor) -> Tensor:
        """Args: ``ctx [B, Cc, hc, wc]``; ``lr_prior [B, 1, h, w]`` in [0, 1]. Returns gates ``[B, C]`` in (0, 1)."""
        m = F.interpolate(lr_prior, size=ctx.shape[-2:], mode="bilinear", align_corners=False)
        fg = (ctx * m).mean(dim=(2, 3), keepdim=True)
        bg = (ctx * (1 - m)).mean(dim=(2, 3), keepdim=True)
        z = torch.cat([F.relu(self.fg(fg)), F.relu(self.bg(bg))], 1)
        return torch.sigmoid(self.gate(z)).flatten(1)
