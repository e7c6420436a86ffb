"""LPN: exact parameter count of the paper's network, official key names, output shapes."""

from __future__ import annotations

import pytest
import torch
from sparsemat.models.lpn import LPN, count_parameters


@pytest.fixture(scope="module")
def lpn() -> LPN:
    torch.manual_seed(0)
    return LPN().eval()


def test_parameter_count(lpn: LPN) -> None:
    assert count_parameters(lpn) == 4_028_284
    assert count_parameters(lpn.aux_head) == 495  # unused head, kept for strict official loading
    assert count_parameters(lpn.backbone) == 2_223_872  # MobileNetV2 features without classifier


def test_official_key_names(lpn: LPN) -> None:
    sd = lpn.state_dict()
    expected = {
        "backbone.model.features.0.0.weight": (32, 3, 3, 3),
        "backbone.model.features.1.conv.0.weight": (32, 1, 3, 3),  # expansion-1 block starts depthwise
        "backbone.model.features.18.0.weight": (1280, 320, 1, 1),
        "decoder.se_block.fc.0.weight": (320, 1280),
        "decoder.se_block.fc.2.weight": (1280, 320),
        "decoder.p32x.layers.0.weight": (1, 1280, 1, 1),
        "decoder.conv_dec16x.0.layers.0.weight": (64, 1376, 3, 3),
        "decoder.conv_dec16x.0.layers.1.bnorm.running_mean": (32,),
        "decoder.conv_dec2x.2.layers.0.weight": (32, 32, 3, 3),
        "decoder.conv_dec1x.0.layers.0.weight": (32, 35, 3, 3),
        "decoder.p16x.layers.0.weight": (1, 33, 1, 1),
        "decoder.p4x.layers.0.weight": (1, 32, 1, 1),
        "decoder.p0x.layers.0.weight": (1, 2, 1, 1),
        "aux_head.s16.layers.0.weight": (3, 32, 1, 1),
    }
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any("inorm" in k for k in sd)  # InstanceNorm half has no affine and no running stats


def test_output_shapes_512x896(lpn: LPN) -> None:
    x = torch.rand(1, 3, 512, 896) * 2 - 1
    with torch.inference_mode():
        alpha, ctx = lpn(x)
    assert alpha.shape == (1, 1, 512, 896) and alpha.dtype == torch.float32
    assert ctx.shape == (1, 32, 32, 56)
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0


def test_batch_and_size_checks(lpn: LPN) -> None:
    with torch.inference_mode():
        alpha, ctx = lpn(torch.zeros(2, 3, 64, 96))
    assert alpha.shape == (2, 1, 64, 96) and ctx.shape == (2, 32, 4, 6)
    with pytest.raises(ValueError, match="multiples of 32"):
        lpn(torch.zeros(1, 3, 64, 80))
