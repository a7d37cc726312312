"""MoveNet's MobileNetV2 as the backbone start of AdaM and MSG-VIM (``backbone_init: movenet``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vidmatte.errors import VidmatteError
from vidmatte.models.adam.encoder import IMAGENET_MEAN, IMAGENET_STD
from vidmatte.models.backbones.mobilenetv2 import MobileNetV2
from vidmatte.segmentation.movenet import load_person_detector
from vidmatte.segmentation.movenet_backbone import calibration_images, load_movenet_mobilenetv2


def _without_strides(network: nn.Module) -> None:
    """Every convolution at stride 1, dilation 1 and symmetric padding, in both networks: then
    TensorFlow's "SAME" padding and the dilated stages no longer differ, and the functions must agree."""
    for conv in network.modules():
        if isinstance(conv, nn.Conv2d) and conv.kernel_size[0] > 1:
            conv.stride, conv.dilation, conv.padding = (1, 1), (1, 1), (1, 1)


@pytest.fixture(scope="module")
def calibration() -> torch.Tensor:
    return calibration_images(64)


def test_the_loaded_backbone_computes_movenets_features(calibration: torch.Tensor) -> None:
    backbone = MobileNetV2(width_mult=1.5)
    load_movenet_mobilenetv2(backbone, calibration)
    detector = load_person_detector().backbone.float()
    _without_strides(backbone.eval())
    _without_strides(detector)
    # the stem pads its input itself, with the grey that is zero in both input scales
    backbone.stem[0].padding = detector.stem.padding = (0, 0)
    x = F.pad(calibration[:1, :, :32, :32], (1, 1, 1, 1), value=0.5)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = backbone((x - mean) / std)
        theirs = detector(2 * x - 1)
    # stages 1/4, 1/8 (tapped by both) and the last 1x1 convolution
    for a, b in ((ours[1], theirs[0]), (ours[2], theirs[1]), (ours[3], theirs[3])):
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1e-3 * b.abs().max()


def test_batch_norms_hold_the_statistics_of_real_images(calibration: torch.Tensor) -> None:
    backbone = MobileNetV2(width_mult=1.5)
    load_movenet_mobilenetv2(backbone, calibration)
    norm = backbone.stages[3][0].block[0][1]
    assert not torch.allclose(norm.running_var, torch.ones_like(norm.running_var))
    torch.testing.assert_close(norm.weight, torch.sqrt(norm.running_var + norm.eps))
    # a training-mode pass on the calibration images normalises with nearly the recorded statistics
    eval_out = backbone.eval()((calibration - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / 0.25)[3]
    train_out = backbone.train()((calibration - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / 0.25)[3]
    assert F.cosine_similarity(eval_out.flatten(), train_out.flatten(), dim=0) > 0.9


def test_another_width_is_refused(calibration: torch.Tensor) -> None:
    with pytest.raises(VidmatteError, match=r"width 1\.5"):
        load_movenet_mobilenetv2(MobileNetV2(width_mult=1.0), calibration)


def test_msgvim_on_movenets_backbone_starts_from_its_features_and_trains_the_guidance(tmp_path) -> None:
    from vidmatte.models.registry import build_model
    from vidmatte.training.config import OptimConfig, SourceConfig, TrainConfig
    from vidmatte.training.trainer import Trainer

    trainer = Trainer(
        TrainConfig(
            model="msgvim-mnv2-w15",
            stage="msgvim",
            backbone_init="movenet",
            out=str(tmp_path / "run"),
            steps=1,
            data=SourceConfig(kind="synthetic", frames=2, size=(64, 64), instances=(2, 2), augment=None),
            optim=OptimConfig(lr=1e-3, warmup_steps=0),
        )
    )
    model = trainer.model
    backbone = model.encoder.backbone
    detector = load_person_detector().backbone.float()
    torch.testing.assert_close(backbone.network.head[0].weight, detector.last.weight)
    fresh = build_model("msgvim-mnv2-w15").encoder.backbone
    assert not torch.equal(fresh.network.head[0].weight, detector.last.weight)
    # the guidance starts neutral: the features are the MobileNetV2's own, at 1/2 ... 1/32
    x = torch.rand(1, 5, 64, 96)
    with torch.no_grad():
        features = backbone.eval()(x)
        alone = backbone.network(x[:, :3])
    assert [f.shape[-2:] for f in features] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    assert [f.shape[1] for f in features] == [backbone.half_channels, *backbone.stage_channels]
    for a, b in zip((features.half, features.quarter, features.eighth, features.deepest), alone, strict=True):
        torch.testing.assert_close(a, b)
    trainer.fit()
    assert backbone.guidance.weight.abs().sum() > 0  # one step teaches the masks' entry
