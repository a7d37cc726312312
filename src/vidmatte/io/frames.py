"""Image files and folders of frames.

Every image is read by :func:`read_channels`, at 8 bits with its own channels (grey, grey and
alpha, RGB or RGBA); colour frames, alphas and masks are all taken from it:

- 8-bit images as they are; palette images as their colours (with alpha where the palette has
  transparency);
- 16-bit images (PNG, TIFF) by their top 8 bits (``v >> 8``: 65535 -> 255, ``257 * k`` -> ``k``), as
  OpenCV's ``IMREAD_GRAYSCALE`` and libpng's ``strip_16`` do, so the published evaluation's reading
  of 16-bit alphas is kept;
- floating-point images (OpenEXR, 32-bit float TIFF) as linear light: colour through the sRGB transfer
  curve, then clipped to [0, 1] and rounded to 8 bits (values above 1, highlights, become white); their
  alpha is coverage, clipped and rounded without a curve.

Alphas are then read the way the published evaluation code reads them (OpenCV ``IMREAD_GRAYSCALE``
then ``/ 255``): grey as is, colour through OpenCV's fixed-point BT.601 weights. Pillow does the
decoding, FFmpeg (PyAV) what Pillow cannot (OpenEXR, float RGB TIFF), so OpenCV is not a dependency.

Frames of a folder are ordered by their names with numbers compared as numbers (:func:`natural_key`).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vidmatte.errors import VidmatteError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".exr")
# read by FFmpeg: Pillow has no decoder for them
_FFMPEG_EXTENSIONS = (".exr",)

# OpenCV's RGB -> grey weights in 14-bit fixed point (0.299, 0.587, 0.114), rounded half up.
_GREY_WEIGHTS = np.array([4899, 9617, 1868], dtype=np.uint32)
_GREY_SHIFT = 14
_SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_GREY_MODES = ("1", "L", "LA", "La", "F", *_SIXTEEN_BIT_GREY_MODES)
# sRGB transfer curve (IEC 61966-2-1): linear light -> encoded value
_SRGB_LINEAR_LIMIT = 0.0031308
_SRGB_SLOPE = 12.92
_SRGB_GAMMA = 2.4
_SRGB_OFFSET = 0.055


def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key that compares runs of digits as numbers, the rest as text.

    >>> sorted(["frame_10", "frame_2", "frame_1", "b", "a"], key=natural_key)
    ['a', 'b', 'frame_1', 'frame_2', 'frame_10']
    >>> natural_key("1") == natural_key("01")
    True
    """
    parts = re.split(r"(\d+)", name)
    # text at even positions, numbers at odd ones: two keys never compare a number with text
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts))


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, in the natural order of their names (``frame_2`` before
    ``frame_10``; see :func:`natural_key`), without their extension.

    Raises:
        VidmatteError: the folder does not exist or holds no image, or two files name the same frame
            (``1.png`` and ``01.png``, or ``1.png`` and ``1.jpg``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VidmatteError(f"{folder}: no such folder")
    frames = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=lambda p: (natural_key(p.stem), p.name),
    )
    if not frames:
        raise VidmatteError(f"{folder}: folder holds no image")
    for first, second in itertools.pairwise(frames):
        if natural_key(first.stem) == natural_key(second.stem):
            raise VidmatteError(
                f"{second}: names the same frame as {first.name} (numbers are compared as numbers); "
                "rename one of them"
            )
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


def read_channels(path: str | os.PathLike) -> np.ndarray:
    """Read an image at 8 bits with its own channels, as the module docstring describes.

    Returns:
        ``(H, W, C)`` uint8: ``C`` = 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA).

    Raises:
        VidmatteError: a missing or unreadable file, naming it.
    """
    path = Path(path)
    if path.suffix.lower() in _FFMPEG_EXTENSIONS:
        return _read_with_ffmpeg(path)
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise VidmatteError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        # float RGB TIFF and other files that FFmpeg decodes and Pillow does not
        return _read_with_ffmpeg(path)
    # a header declaring billions of pixels is refused before anything is decoded
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise VidmatteError(f"{path}: unreadable image ({error})") from None
    return _pillow_channels(image)


def _pillow_channels(image: Image.Image) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_GREY_MODES:
        return _top_byte(np.asarray(image))[..., None]
    if image.mode == "F":
        return _linear_to_u8(np.asarray(image, dtype=np.float32))[..., None]
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        grey = image.mode in _GREY_MODES
        alpha = any(band in ("A", "a") for band in image.getbands()) or "transparency" in image.info
        image = image.convert(
            {(True, True): "LA", (True, False): "L", (False, True): "RGBA"}.get((grey, alpha), "RGB")
        )
    channels = np.asarray(image, dtype=np.uint8)
    return channels[..., None] if channels.ndim == 2 else channels


def _read_with_ffmpeg(path: Path) -> np.ndarray:
    """The first picture of an image FFmpeg decodes (OpenEXR, float TIFF), as :func:`read_channels`."""
    import av  # here: PNG and JPEG readers (vidmatte eval) need not pay PyAV's import at start-up

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.width * stream.height > Image.MAX_IMAGE_PIXELS:
                raise VidmatteError(f"{path}: unreadable image ({stream.width}x{stream.height} pixels)")
            frame = next(container.decode(stream))
            layout = frame.format
            grey = layout.name.startswith(("gray", "ya"))
            alpha = any(component.is_alpha for component in layout.components)
            if "f32" in layout.name or "f16" in layout.name:
                values = frame.to_ndarray().astype(np.float32)
                values = values[..., None] if values.ndim == 2 else values
                colour = _linear_to_u8(values[..., : 1 if grey else 3])
                return np.concatenate([colour, to_u8(values[..., -1:])], -1) if alpha else colour
            target = "rgba64le" if alpha else ("gray16le" if grey else "rgb48le")
            channels = _top_byte(frame.to_ndarray(format=target))
    except FileNotFoundError:
        raise VidmatteError(f"{path}: no such file") from None
    except (av.FFmpegError, OSError, ValueError, IndexError, StopIteration) as error:
        raise VidmatteError(
            f"{path}: unreadable image ({getattr(error, 'strerror', None) or error})"
        ) from None
    if channels.ndim == 2:
        return channels[..., None]
    # FFmpeg has no packed 16-bit grey-with-alpha format to convert to: grey comes back as RGB
    return channels[..., [0, 3]] if grey and alpha else channels


def _top_byte(values: np.ndarray) -> np.ndarray:
    """16-bit values to 8 bits by their top byte (``v >> 8``), clipped."""
    return (values.astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)


def _linear_to_u8(values: np.ndarray) -> np.ndarray:
    """Linear light to 8-bit sRGB: the sRGB transfer curve on values clipped to [0, 1], rounded."""
    linear = np.clip(values, 0.0, 1.0)
    encoded = np.where(
        linear <= _SRGB_LINEAR_LIMIT,
        _SRGB_SLOPE * linear,
        (1 + _SRGB_OFFSET) * linear ** (1 / _SRGB_GAMMA) - _SRGB_OFFSET,
    )
    return to_u8(encoded)


def grey_of(channels: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` uint8 from :func:`read_channels` -> ``(H, W)`` uint8 grey (alpha dropped; colour
    through OpenCV's fixed-point BT.601 weights, as ``IMREAD_GRAYSCALE``)."""
    if channels.shape[-1] <= 2:
        return np.ascontiguousarray(channels[..., 0])
    rgb = channels[..., :3].astype(np.uint32)
    return ((rgb @ _GREY_WEIGHTS + (1 << (_GREY_SHIFT - 1))) >> _GREY_SHIFT).astype(np.uint8)


def rgb_of(channels: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` uint8 from :func:`read_channels` -> ``(H, W, 3)`` uint8 RGB (alpha dropped)."""
    if channels.shape[-1] <= 2:
        return np.repeat(channels[..., :1], 3, axis=-1)
    return channels if channels.shape[-1] == 3 else np.ascontiguousarray(channels[..., :3])


def alpha_of(channels: np.ndarray) -> np.ndarray | None:
    """The ``(H, W)`` alpha channel of :func:`read_channels`' result, ``None`` for grey or RGB."""
    return channels[..., -1] if channels.shape[-1] in (2, 4) else None


def read_grey_u8(path: str | os.PathLike) -> np.ndarray:
    """Read an image as 8-bit grey, as OpenCV's ``IMREAD_GRAYSCALE`` does.

    Returns:
        ``(H, W)`` uint8.
    """
    return grey_of(read_channels(path))


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read an alpha matte.

    Returns:
        ``(H, W)`` float32 in [0, 1] (the 8-bit value divided by 255).
    """
    return read_grey_u8(path).astype(np.float32) / 255


def read_rgb_u8(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image (an alpha channel is dropped).

    Returns:
        ``(H, W, 3)`` uint8, RGB.
    """
    return rgb_of(read_channels(path))


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read a colour image.

    Returns:
        ``(H, W, 3)`` float32 in [0, 1], RGB.
    """
    return read_rgb_u8(path).astype(np.float32) / 255


def to_u8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8, rounding to nearest (values outside [0, 1] are clipped)."""
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def normalised_u8(alphas: np.ndarray) -> np.ndarray:
    """Scale instances' alphas where they sum past 1, then truncate to 8 bits.

    Truncation (not rounding) keeps the 8-bit sum of the instances at or below 255 everywhere.

    Args:
        alphas: ``(N, ...)`` float32 in [0, 1], one entry per instance.

    Returns:
        ``(N, ...)`` uint8.

    >>> normalised_u8(np.array([[0.8], [0.6]], np.float32)).ravel().tolist()
    [145, 109]
    """
    total = alphas.sum(axis=0, keepdims=True)
    scaled = alphas / np.maximum(total, 1.0)
    return np.floor(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write ``(H, W)`` grey or ``(H, W, 3|4)`` colour; float in [0, 1] or uint8. Creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.dtype != np.uint8:
        image = to_u8(image)
    Image.fromarray(image).save(path)
