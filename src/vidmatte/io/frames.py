"""Image files and folders of frames.

Alphas are read the way the published evaluation code reads them (OpenCV ``IMREAD_GRAYSCALE``
then ``/ 255``): 8-bit grey as is, colour through OpenCV's fixed-point BT.601 weights, 16-bit
shifted down to 8 bits. Pillow does the decoding, so OpenCV is not a dependency.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vidmatte.errors import VidmatteError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# OpenCV's RGB -> grey weights in 14-bit fixed point (0.299, 0.587, 0.114), rounded half up.
_GREY_WEIGHTS = np.array([4899, 9617, 1868], dtype=np.uint32)
_GREY_SHIFT = 14


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name.

    Raises:
        VidmatteError: the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VidmatteError(f"{folder}: no such folder")
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not frames:
        raise VidmatteError(f"{folder}: folder holds no image")
    return frames


def select_folders(folders: list[Path], names: Sequence[str] | None, root: str | os.PathLike) -> list[Path]:
    """The folders called ``names``, in that order; all of ``folders`` when ``names`` is ``None``.

    Raises:
        VidmatteError: a name with no folder, naming ``root / name``.
    """
    if names is None:
        return folders
    known = {folder.name: folder for folder in folders}
    missing = [name for name in names if name not in known]
    if missing:
        raise VidmatteError(f"{Path(root) / missing[0]}: no such clip")
    return [known[name] for name in names]


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise VidmatteError(f"{path}: no such file") from None
    # a header declaring billions of pixels is refused before anything is decoded
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise VidmatteError(f"{path}: unreadable image ({error})") from None
    return image


def read_grey_u8(path: str | os.PathLike) -> np.ndarray:
    """Read an image as 8-bit grey, as OpenCV's ``IMREAD_GRAYSCALE`` does.

    Returns:
        ``(H, W)`` uint8.
    """
    image = _open(Path(path))
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return (np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8)
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint32)
    return ((rgb @ _GREY_WEIGHTS + (1 << (_GREY_SHIFT - 1))) >> _GREY_SHIFT).astype(np.uint8)


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read an alpha matte.

    Returns:
        ``(H, W)`` float32 in [0, 1] (the 8-bit value divided by 255).
    """
    return read_grey_u8(path).astype(np.float32) / 255


def read_rgb_u8(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image.

    Returns:
        ``(H, W, 3)`` uint8, RGB.
    """
    image = _open(Path(path))
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image.

    Returns:
        ``(H, W, 3)`` float32 in [0, 1], RGB.
    """
    return read_rgb_u8(path).astype(np.float32) / 255


def to_u8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8, rounding to nearest (values outside [0, 1] are clipped)."""
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write ``(H, W)`` grey or ``(H, W, 3|4)`` colour; float in [0, 1] or uint8. Creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.dtype != np.uint8:
        image = to_u8(image)
    Image.fromarray(image).save(path)
