"""MobileNetV2 backbone: the paper's parameter count, feature strides and channels."""

import pytest
import torch

from vidmatte import build_model
from vidmatte.models.backbones.mobilenetv2 import MobileNetV2, make_divisible

PAPER_BACKBONE_PARAMS = 2.22e6


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_backbone_has_the_papers_parameter_count():
    assert count(MobileNetV2()) == pytest.approx(PAPER_BACKBONE_PARAMS, rel=0.01)


def test_adam_mnv2_uses_the_full_width_backbone():
    model = build_model("adam-mnv2")
    assert count(model.encoder.backbone) == pytest.approx(PAPER_BACKBONE_PARAMS, rel=0.01)
    assert model.encoder.reduce.out_channels == 256
    assert len(model.transformer.layers) == 3


def test_features_are_at_half_quarter_eighth_and_sixteenth():
    backbone = MobileNetV2().eval()
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 96, 160))
    assert backbone.channels == (16, 24, 32, 1280)
    for feature, channels, stride in zip(features, backbone.channels, (2, 4, 8, 16), strict=True):
        assert feature.shape == (1, channels, 96 // stride, 160 // stride)


def test_last_stages_are_dilated_not_strided():
    backbone = MobileNetV2()
    depthwise = [m for m in backbone.stages[5:].modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise
    assert all(m.stride == (1, 1) and m.dilation == (2, 2) and m.padding == (2, 2) for m in depthwise)


@pytest.mark.parametrize(("value", "expected"), [(32, 32), (8, 8), (4, 8), (24 * 0.5, 16), (160 * 0.25, 40)])
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected
