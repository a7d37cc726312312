"""vidmatte: video matting (AdaM) and video instance matting (MSG-VIM), with their metrics, data and training.

Importing the package has no side effects and does not import torch; the functions below import
what they need on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"


def build_model(name: str, **overrides):
    """Build a named model configuration (see :func:`vidmatte.models.registry.build_model`)."""
    from vidmatte.models.registry import build_model as _build

    return _build(name, **overrides)


def load_model(name_or_path: str, model: str | None = None, device: str = "cpu"):
    """Load trained weights: ``adam-fast``, ``adam-default``, ``msgvim-default`` or a weights file (see
    :func:`vidmatte.models.loading.load_model`)."""
    from vidmatte.models.loading import load_model as _load

    return _load(name_or_path, model=model, device=device)


def matte_video(input, out, **options):
    """Matte a video or image folder into alpha, foreground, composite and RGBA outputs (see
    :func:`vidmatte.inference.video.matte_video` for the options)."""
    from vidmatte.inference.video import matte_video as _matte

    return _matte(input, out, **options)
