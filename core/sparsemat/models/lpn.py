"""Low-resolution prior network (LPN) of SparseMat.

A MobileNetV2 encoder (width 1.0, expansion 6, BatchNorm + ReLU6) followed by a MODNet-style
U-Net decoder ("HLBranch") with IBNorm, an SE block on the deepest features, one side output per
stage and a 1x1 fusion of the finest and the 1/8 side outputs. ``forward`` returns the alpha prior
and ``ctx``, the 32-channel 1/16-resolution decoder features that the official Masked-SE pools.

Module and parameter names mirror the official SparseMat release (``backbone.model.features.*``,
``decoder.*``, ``aux_head.*``) so that an official ``lpn.pth`` state dict loads with
``strict=True`` after stripping ``module.``/``lpn.`` prefixes (see :mod:`sparsemat.convert`).
With ``hr_channels=32`` the network has 4,028,284 parameters, 495 of which belong to the unused
auxiliary head (kept only so official checkpoints load strictly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Channels of the five encoder taps (strides 2, 4, 8, 16, 32).
ENC_CHANNELS: tuple[int, int, int, int, int] = (16, 24, 32, 96, 1280)

# MobileNetV2 inverted-residual settings: expansion t, output channels c, repeats n, first stride s.
_MBV2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# features[a:b] slices that end at each encoder tap (strides 2, 4, 8, 16, 32).
_TAPS: tuple[tuple[int, int], ...] = ((0, 2), (2, 4), (4, 7), (7, 14), (14, 19))


def _conv_bn_relu6(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: (1x1 expand) → 3x3 depthwise → 1x1 linear projection, residual if shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(cin, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, cin, H, W] float32 → [B, cout, H/stride, W/stride]."""
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor (no classifier): ``features`` holds 19 stages, the last a 1x1 → 1280."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        stages: list[nn.Module] = [_conv_bn_relu6(in_channels, 32, 3, 2)]
        cin = 32
        for t, c, n, s in _MBV2_SETTINGS:
            for i in range(n):
                stages.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        stages.append(_conv_bn_relu6(cin, 1280, 1, 1))
        self.features = nn.Sequential(*stages)
        for m in self.modules():  # He-style init of the original MobileNetV2 code
            if isinstance(m, nn.Conv2d):
                n_fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / n_fan) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


class MobileNetV2Backbone(nn.Module):
    """Wraps :class:`MobileNetV2` as ``self.model`` and returns the five encoder taps."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.model = MobileNetV2(in_channels)
        self.enc_channels = list(ENC_CHANNELS)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] float32 in [-1, 1] → [enc2x, enc4x, enc8x, enc16x, enc32x] (16/24/32/96/1280 ch)."""
        taps = []
        for a, b in _TAPS:
            for n in range(a, b):
                x = self.model.features[n](x)
            taps.append(x)
        return taps


class IBNorm(nn.Module):
    """First half of the channels: BatchNorm (affine); second half: InstanceNorm (no affine)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bnorm_channels = channels // 2
        self.inorm_channels = channels - self.bnorm_channels
        self.bnorm = nn.BatchNorm2d(self.bnorm_channels, affine=True)
        self.inorm = nn.InstanceNorm2d(self.inorm_channels, affine=False)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, H, W] float32 → same shape."""
        bn_x = self.bnorm(x[:, : self.bnorm_channels].contiguous())
        rest = x[:, self.inorm_channels :].contiguous()  # official slicing (identical for even C)
        in_x = torch.zeros_like(rest) if rest.shape[-1] * rest.shape[-2] == 1 else self.inorm(rest)
        return torch.cat((bn_x, in_x), 1)


class Conv2dIBNormRelu(nn.Module):
    """Conv2d (+ IBNorm) (+ ReLU), kept in ``self.layers`` as in MODNet."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        padding: int = 0,
        bias: bool = True,
        with_ibn: bool = True,
        with_relu: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel_size, 1, padding, bias=bias)]
        if with_ibn:
            layers.append(IBNorm(cout))
        if with_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, cin, H, W] → [B, cout, H, W]."""
        return self.layers(x)


def _conv3(cin: int, cout: int) -> Conv2dIBNormRelu:
    return Conv2dIBNormRelu(cin, cout, 3, padding=1)


def _head(cin: int, cout: int = 1) -> Conv2dIBNormRelu:
    return Conv2dIBNormRelu(cin, cout, 1, with_ibn=False, with_relu=False)


class SEBlock(nn.Module):
    """Squeeze-and-excitation: global average pool → FC (C→C/r) → ReLU → FC → sigmoid, no biases."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C, H, W] → x scaled per channel."""
        b, c = x.shape[:2]
        w = self.fc(self.pool(x).view(b, c)).view(b, c, 1, 1)
        return x * w


def _up_like(x: Tensor, ref: Tensor) -> Tensor:
    return F.interpolate(x, size=ref.shape[2:], mode="bilinear", align_corners=False)


def _up2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class HLBranch(nn.Module):
    """MODNet-style decoder: SE on enc32x, then five up-sampling stages with side outputs and a fusion."""

    def __init__(self, hr_channels: int = 32, enc_channels: tuple[int, ...] = ENC_CHANNELS) -> None:
        super().__init__()
        hr, e = hr_channels, enc_channels
        self.se_block = SEBlock(e[4], reduction=4)
        self.p32x = _head(e[4])
        self.conv_dec16x = nn.Sequential(_conv3(e[4] + e[3], 2 * hr), _conv3(2 * hr, hr))
        self.p16x = _head(hr + 1)
        self.conv_dec8x = nn.Sequential(_conv3(hr + e[2], 2 * hr), _conv3(2 * hr, hr))
        self.p8x = _head(hr + 1)
        self.conv_dec4x = nn.Sequential(_conv3(hr + e[1], 2 * hr), _conv3(2 * hr, hr))
        self.p4x = _head(hr)
        self.conv_dec2x = nn.Sequential(_conv3(hr + e[0], 2 * hr), _conv3(2 * hr, hr), _conv3(hr, hr))
        self.p2x = _head(hr + 1)
        self.conv_dec1x = nn.Sequential(_conv3(hr + 3, hr))
        self.p1x = _head(hr + 1)
        self.p0x = _head(2)

    def forward(self, img: Tensor, enc: list[Tensor]) -> tuple[Tensor, Tensor]:
        """img: [B, 3, H, W] in [-1, 1]; enc: the five taps → (p0x logits [B, 1, H, W], dec16x [B, hr, H/16, W/16])."""
        enc2x, enc4x, enc8x, enc16x, enc32x = enc
        enc32x = self.se_block(enc32x)
        # Side outputs are first resized to the input size, then back to each stage (as the official code).
        p32x = _up_like(self.p32x(enc32x), img)

        dec16x = self.conv_dec16x(torch.cat((_up2(enc32x), enc16x), 1))
        p16x = _up_like(self.p16x(torch.cat((dec16x, _up_like(p32x, dec16x)), 1)), img)

        dec8x = self.conv_dec8x(torch.cat((_up2(dec16x), enc8x), 1))
        p8x = _up_like(self.p8x(torch.cat((dec8x, _up_like(p16x, dec8x)), 1)), img)

        dec4x = self.conv_dec4x(torch.cat((_up2(dec8x), enc4x), 1))
        p4x = _up_like(self.p4x(dec4x), img)

        dec2x = self.conv_dec2x(torch.cat((_up2(dec4x), enc2x), 1))
        p2x = _up_like(self.p2x(torch.cat((dec2x, _up_like(p4x, dec2x)), 1)), img)

        dec1x = self.conv_dec1x(torch.cat((_up2(dec2x), img), 1))
        p1x = self.p1x(torch.cat((dec1x, _up_like(p2x, dec1x)), 1))

        p0x = self.p0x(torch.cat((p1x, _up_like(p8x, p1x)), 1))
        return p0x, dec16x


class AuxilaryHead(nn.Module):
    """Unused auxiliary RGB heads of the official LPN (495 parameters); present only for strict loading.

    The spelling follows the official class name.
    """

    def __init__(self, hr_channels: int = 32) -> None:
        super().__init__()
        self.s1 = _head(hr_channels, 3)
        self.s2 = _head(hr_channels, 3)
        self.s4 = _head(hr_channels, 3)
        self.s8 = _head(hr_channels, 3)
        self.s16 = _head(hr_channels, 3)


class LPN(nn.Module):
    """Low-resolution prior network.

    Args:
        in_channels: input channels (3, RGB).
        hr_channels: decoder width (32 in the official configuration; ctx has this many channels).
    """

    def __init__(self, in_channels: int = 3, hr_channels: int = 32) -> None:
        super().__init__()
        self.backbone = MobileNetV2Backbone(in_channels)
        self.decoder = HLBranch(hr_channels, ENC_CHANNELS)
        self.aux_head = AuxilaryHead(hr_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Predict the low-resolution alpha.

        Args:
            x: [B, 3, h, w] float32 RGB in [-1, 1] (display sRGB ``(rgb - 0.5) / 0.5``); h and w must be
                multiples of 32.

        Returns:
            alpha: [B, 1, h, w] float32 in [0, 1] (sigmoid of the fused output).
            ctx: [B, hr_channels, h/16, w/16] float32 decoder features (``dec16x``) for the Masked-SE.
        """
        h, w = x.shape[-2:]
        if x.dim() != 4 or x.shape[1] != 3 or h % 32 or w % 32:
            raise ValueError(f"LPN expects [B, 3, h, w] with h and w multiples of 32, got {tuple(x.shape)}")
        p0x, ctx = self.decoder(x, self.backbone(x))
        return torch.sigmoid(p0x), ctx


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())
