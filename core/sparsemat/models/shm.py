"""SHM: the sparse high-resolution module of SparseMat (method.md §4, with the port decisions of §8).

Encoder: a sparse ResNet18 of output stride 8 (BasicBlock ×2 per layer; conv1 without bias,
conv2 with bias; BN + ReLU); Masked-SE on the bottleneck; decoder of three inverse convs (+BN +
LeakyReLU 0.01) with skip concats to ``x2`` (/4) and ``x1`` (/2); side outputs ``p4x, p2x, p1x``
(1×1 SubM + sigmoid) and a head on ``[up3, RGB in [0, 1]]``.

Port decisions: layer1's input is declared as the stem width (the official 128 is a bug);
layer4's downsample uses dilation 2 (what spconv 1.x actually ran).

Initialisation (for easy training, output stays a plain sigmoid as in the paper): Kaiming for the
convs, BN γ=1/β=0 except the last BN of every residual branch, which starts at γ=0 so every block
starts as its shortcut (zero-init residual, Goyal et al. 2017); the final 1×1 convs of the head and
the side outputs start at N(0, 1e-3²), so every output starts near 0.5 in sigmoid's linear range
instead of saturating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from sparsemat.models.context import ContextEncoder, MaskedSE
from sparsemat.sparse import get_backend
from sparsemat.sparse.layers import (
    DownConv2d,
    SparseBatchNorm,
    SparseLeakyReLU,
    SparseReLU,
    SparseSigmoid,
    SubMConv2d,
    UpConv2d,
    sparse_add,
    sparse_cat,
    sparse_scale,
)
from sparsemat.sparse.map import SiteSet, SparseMap
from sparsemat.sparse.rulebook import down_sites


@dataclass(frozen=True)
class SHMConfig:
    """Widths of one SHM variant.

    Attributes:
        stem: stem width (x1, /2).
        layers: widths of layer1..layer4 (/4, /8, /8, /8).
        decoder: widths of the three inverse-conv stages (/4, /2, /1).
        head: widths of the two 3×3 head convs.
        ctx_channels: context channels of the Masked-SE.
        ctx_widths: widths of the dense context encoder's four strided convs.
        residual: the head predicts a correction to the prior's logit, ``α = σ(head + logit(prior))``,
            with the last head conv zero-initialised so an untrained model returns the prior
            unchanged. Trains several times faster on a CPU budget (``lite``). ``paper`` keeps the
            official plain-sigmoid head so official checkpoints load.
        guided_prior: the prior input (fourth feature, and the residual base) at each site is the
            guided-filter upsampling of the low-res prior (:mod:`sparsemat.engine.guided`) instead of the
            bilinear ``α↑``: an edge-aware start the head only has to correct. The active band is still
            defined on ``α↑``. Used by ``lite``; ``paper`` keeps the bilinear input of the official code.
        colour_samples: eight more input features per site after the prior: local foreground and background
            colour estimates from the prior's confident regions, their projection alpha and their distance
            (:mod:`sparsemat.engine.colour_samples`), so the network can place an edge by colour where the prior
            is off by a few pixels.
        sample_levels: ``(foreground, background)``: the low-resolution prior's alpha above / below which a pixel
            is a colour sample for those inputs (``colour_samples`` only). A model is run with the levels it was
            trained with; every shipped model uses the default (0.98, 0.02), the engine's
            ``sparsemat.engine.colour_samples.DEFAULT_LEVELS``.
        bytes_per_site: measured peak memory of one inference pass per active full-resolution
            pixel, with margin (4K, ~7 % active, torch backend: lite 1.09 GB and paper 1.75 GB peak
            RSS for 586 k sites, process baseline included). Sets the default active-pixel budget.
    """

    stem: int = 64
    layers: tuple[int, int, int, int] = (64, 128, 256, 512)
    decoder: tuple[int, int, int] = (256, 256, 64)
    head: tuple[int, int] = (32, 16)
    ctx_channels: int = 32
    ctx_widths: tuple[int, int, int, int] = (16, 24, 32, 32)
    residual: bool = False
    guided_prior: bool = False
    colour_samples: bool = False
    sample_levels: tuple[float, float] = (0.98, 0.02)
    bytes_per_site: float = 3500.0

    @property
    def in_channels(self) -> int:
        """Input features per site: RGB, prior (+ 8 colour samples with ``colour_samples``)."""
        return 12 if self.colour_samples else 4


class SHMOutput(NamedTuple):
    """SHM result.

    Attributes:
        alpha: ``SparseMap`` on the sites of the input, 1 channel, alpha in [0, 1].
        side: side outputs at strides 4, 2, 1 (``p4x, p2x, p1x``), 1 channel each, in [0, 1].
    """

    alpha: SparseMap
    side: tuple[SparseMap, ...]


class BasicBlock(nn.Module):
    """Sparse ResNet BasicBlock: conv1-BN-ReLU-conv2-BN + shortcut → ReLU.

    Args:
        cin, cout: channels.
        key: indice key of a strided block (conv1 and the downsample are k3 s2 p1 on this key);
            None for a stride-1 block.
        dilation: dilation of conv1 and of the 3×3 SubM downsample (stride-1 blocks).
        downsample: add a (conv + BN) shortcut; a strided block always has one.
    """

    def __init__(
        self, cin: int, cout: int, key: str | None = None, dilation: int = 1, downsample: bool = False
    ) -> None:
        super().__init__()
        self.conv1: nn.Module
        self.downsample: nn.Sequential | None = None
        if key is not None:
            self.conv1 = DownConv2d(cin, cout, key, bias=False)
            self.downsample = nn.Sequential(DownConv2d(cin, cout, key, bias=False), SparseBatchNorm(cout))
        else:
            self.conv1 = SubMConv2d(cin, cout, 3, dilation, bias=False)
            if downsample or cin != cout:
                self.downsample = nn.Sequential(SubMConv2d(cin, cout, 3, dilation, bias=False), SparseBatchNorm(cout))
        self.bn1 = SparseBatchNorm(cout)
        self.relu = SparseReLU()
        self.conv2 = SubMConv2d(cout, cout, 3, 1, bias=True)
        self.bn2 = SparseBatchNorm(cout)

    def forward(self, x: SparseMap) -> SparseMap:
        """``x [sites, cin]`` → ``[sites' , cout]`` (sites' = strided sites when keyed)."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = self.downsample(x) if self.downsample is not None else x
        return self.relu(sparse_add(out, short))


def _conv_bn_act(conv: nn.Module, c: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv, SparseBatchNorm(c), act)


class SHM(nn.Module):
    """Sparse high-resolution module (see module docstring). Pure: no I/O, no checkpoint loading.

    Args:
        cfg: widths (:class:`SHMConfig`).
    """

    def __init__(self, cfg: SHMConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or SHMConfig()
        self.cfg = cfg
        s = cfg.stem
        l1, l2, l3, l4 = cfg.layers
        d1, d2, d3 = cfg.decoder
        h1, h2 = cfg.head
        self.stem = nn.Sequential(
            _conv_bn_act(SubMConv2d(cfg.in_channels, s, 3, bias=False), s, SparseReLU()),
            _conv_bn_act(DownConv2d(s, s, "spconv0", bias=False), s, SparseReLU()),
            _conv_bn_act(SubMConv2d(s, s, 3, bias=False), s, SparseReLU()),
        )
        self.layer1 = nn.Sequential(BasicBlock(s, l1, key="spconv1"), BasicBlock(l1, l1))
        self.layer2 = nn.Sequential(BasicBlock(l1, l2, key="spconv2"), BasicBlock(l2, l2))
        self.layer3 = nn.Sequential(BasicBlock(l2, l3, downsample=True), BasicBlock(l3, l3))
        self.layer4 = nn.Sequential(BasicBlock(l3, l4, dilation=2, downsample=True), BasicBlock(l4, l4))
        self.context = ContextEncoder(cfg.ctx_channels, cfg.ctx_widths)
        self.se = MaskedSE(l4, cfg.ctx_channels)
        self.up1 = _conv_bn_act(UpConv2d(l4, d1, "spconv2"), d1, SparseLeakyReLU(0.01))
        self.up2 = _conv_bn_act(UpConv2d(d1 + l1, d2, "spconv1"), d2, SparseLeakyReLU(0.01))
        self.up3 = _conv_bn_act(UpConv2d(d2 + s, d3, "spconv0"), d3, SparseLeakyReLU(0.01))
        self.p4x = SubMConv2d(d1, 1, 1, bias=False)
        self.p2x = SubMConv2d(d2, 1, 1, bias=False)
        self.p1x = SubMConv2d(d3, 1, 1, bias=False)
        self.head = nn.Sequential(
            SubMConv2d(d3 + 3, h1, 3),
            SparseLeakyReLU(0.01),
            SubMConv2d(h1, h2, 3),
            SparseLeakyReLU(0.01),
            SubMConv2d(h2, 1, 1, bias=False),
        )
        self.sigmoid = SparseSigmoid()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
        for conv in (self.p4x, self.p2x, self.p1x, self.head[-1]):
            assert isinstance(conv, SubMConv2d)
            nn.init.normal_(conv.weight, 0.0, 1e-3)
        if self.cfg.residual:  # start as the identity on the prior
            last = self.head[-1]
            assert isinstance(last, SubMConv2d)
            nn.init.zeros_(last.weight)

    def forward(self, x: SparseMap, lr_rgb: Tensor, lr_prior: Tensor, ctx: Tensor | None = None) -> SHMOutput:
        """Refine alpha at the active sites.

        Args:
            x: ``cfg.in_channels`` features at the active full-resolution sites, all mapped from [0, 1] to
                [-1, 1]: RGB, the prior at the site (bilinear ``α↑``, or its guided upsampling when
                ``cfg.guided_prior``) and, with ``cfg.colour_samples``, the 8 colour samples (any backend).
            lr_rgb: ``[B, 3, h, w]`` float32 low-res plate, display sRGB in [0, 1].
            lr_prior: ``[B, 1, h, w]`` float32 low-res prior alpha in [0, 1].
            ctx: optional ``[B, 32, hc, wc]`` external context (an official LPN's ``dec16x``);
                bypasses the context encoder.

        Returns:
            :class:`SHMOutput` (alpha on the sites of ``x``; side outputs at strides 4, 2, 1).
        """
        x1 = self.stem(x)  # /2
        x2 = self.layer1(x1)  # /4
        x5 = self.layer4(self.layer3(self.layer2(x2)))  # /8
        if ctx is None:
            ctx = self.context(lr_rgb, lr_prior)
        x5 = sparse_scale(x5, self.se(ctx, lr_prior).to(x5.features.dtype))
        u1 = self.up1(x5)  # /4
        p4 = self.sigmoid(self.p4x(u1))
        u2 = self.up2(sparse_cat(u1, x2))  # /2
        p2 = self.sigmoid(self.p2x(u2))
        u3 = self.up3(sparse_cat(u2, x1))  # /1
        p1 = self.sigmoid(self.p1x(u3))
        rgb01 = get_backend(x.backend).map(x, lambda f: (f[:, :3] + 1) * 0.5)
        logits = self.head(sparse_cat(u3, rgb01))
        if self.cfg.residual:
            prior_logit = get_backend(x.backend).map(x, lambda f: torch.logit((f[:, 3:4] + 1) * 0.5, eps=1e-3))
            logits = sparse_add(logits, prior_logit)
        alpha = self.sigmoid(logits)
        return SHMOutput(alpha=alpha, side=(p4, p2, p1))

    @torch.no_grad()
    def site_counts(self, x: SparseMap) -> tuple[int, int, int, int]:
        """Active sites at strides 1, 2, 4, 8 for the input ``x`` (the strided sets of this network).

        After a forward pass over ``x`` (torch backend) the strided sets are read from the pass's key
        registry instead of being rebuilt.
        """
        built = [x.registry.get(k) for k in ("spconv0", "spconv1", "spconv2")]
        if isinstance(x.sites, SiteSet) and all(e is not None and isinstance(e.coarse, SiteSet) for e in built):
            n = [x.sites.num] + [e.coarse.num for e in built if e is not None]
            return n[0], n[1], n[2], n[3]
        coords = get_backend(x.backend).coords(x)
        level = SiteSet(coords, x.spatial_shape, x.batch_size)
        counts = [level.num]
        for _ in range(3):
            level = down_sites(level)
            counts.append(level.num)
        return counts[0], counts[1], counts[2], counts[3]

    def macs(self, x: SparseMap, lr_size: tuple[int, int] | None = None) -> float:
        """Analytic multiply-accumulates of one forward pass for the active sets of ``x``.

        Each conv counts ``sites_out × k² × C_in × C_out`` (inverse convs: 9/4 effective taps per
        fine site); BN, activations and the Masked-SE MLP are ignored. The context encoder counts
        its dense convs at ``lr_size`` (default: the input scaled to 512 px on the long side).
        """
        n1, n2, n4, n8 = self.site_counts(x)
        convs = (SubMConv2d, DownConv2d, UpConv2d)
        plan: list[tuple[nn.Module, int]] = []
        for part, n in ((self.stem[0], n1), (self.stem[1], n2), (self.stem[2], n2), (self.layer1, n4)):
            plan += [(m, n) for m in part.modules() if isinstance(m, convs)]
        for part, n in ((self.layer2, n8), (self.layer3, n8), (self.layer4, n8)):
            plan += [(m, n) for m in part.modules() if isinstance(m, convs)]
        for part, n in ((self.up1, n4), (self.p4x, n4), (self.up2, n2), (self.p2x, n2)):
            plan += [(m, n) for m in part.modules() if isinstance(m, convs)]
        for part, n in ((self.up3, n1), (self.p1x, n1), (self.head, n1)):
            plan += [(m, n) for m in part.modules() if isinstance(m, convs)]
        total = 0.0
        for m, n in plan:
            assert isinstance(m, convs)
            total += m.macs(n)
        if lr_size is None:
            h, w = x.spatial_shape
            f = 512.0 / max(h, w)
            lr_size = (max(1, math.ceil(h * f)), max(1, math.ceil(w * f)))
        return total + self.context.macs(lr_size)
