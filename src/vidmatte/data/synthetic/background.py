"""Moving backgrounds: a large canvas (a photograph from scikit-image's offline samples or from
folders of real photographs, or a procedural texture) filmed by a camera that pans and zooms,
under changing light.

A background can be made to resemble a foreground's colours (the hard case for matting) by
passing that foreground's palette.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, UnidentifiedImageError

from vidmatte.data.synthetic.texture import random_colour, value_noise
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import IMAGE_EXTENSIONS

# scikit-image sample images that ship with the package (no download needed)
PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "camera", "brick", "grass", "gravel", "moon", "coins", "cell", "colorwheel",
)  # fmt: skip
KINDS = ("photo", "noise", "shapes", "stripes")
_CANVAS_SCALE = 1.5  # canvas side / frame side: room to pan and zoom
_PHOTO_SIDE = 2048  # real photographs are kept at most this long (memory per worker)


@dataclass(frozen=True)
class SyntheticBackground:
    """A background canvas and how the camera and light move over it.

    Attributes:
        canvas: ``(CH, CW, 3)`` uint8 image larger than the frame.
        kind: one of :data:`KINDS`.
        centre: ``(2,)`` camera centre (x, y) on the canvas at frame 0.
        drift: ``(2,)`` camera velocity in canvas pixels per frame.
        shake: ``(3,)`` amplitude (pixels), rate (radians per frame) and phase of a slow wobble.
        zoom: ``(3,)`` base zoom (>= 1), amplitude, rate of a slow zoom in and out.
        light: ``(3,)`` gain amplitude, rate and phase of a global brightness change.
        tint: ``(3,)`` per-channel colour drift amplitude.
        spot: ``(5,)`` strength, radius (fraction of the frame width), start x, start y, speed of a
            moving light spot (fractions of the frame per frame).
    """

    canvas: np.ndarray
    kind: str
    centre: np.ndarray
    drift: np.ndarray
    shake: np.ndarray
    zoom: np.ndarray
    light: np.ndarray
    tint: np.ndarray
    spot: np.ndarray


def sample_background(
    rng: np.random.Generator,
    height: int,
    width: int,
    frames: int,
    *,
    moving: bool,
    palette: np.ndarray | None = None,
    photos: tuple[str, ...] = (),
) -> SyntheticBackground:
    """Sample a background for a ``height x width`` clip of ``frames`` frames.

    Args:
        moving: whether the camera pans and zooms (otherwise only the light changes).
        palette: ``(K, 3)`` colours in [0, 1] to imitate (a foreground's), or ``None``.
        photos: image files (:func:`list_photos`) that photo backgrounds are drawn from instead of
            scikit-image's samples; ``()``: the samples.
    """
    canvas_h, canvas_w = int(np.ceil(height * _CANVAS_SCALE)), int(np.ceil(width * _CANVAS_SCALE))
    kind = str(rng.choice(KINDS, p=[0.45, 0.2, 0.2, 0.15]))
    colours = _palette(rng, palette)
    if kind == "photo":
        canvas = _photo(rng, canvas_h, canvas_w, colours if palette is not None else None, photos)
    elif kind == "noise":
        noise = value_noise(rng, max(canvas_h, canvas_w), int(rng.integers(3, 10)), 4)[:canvas_h, :canvas_w]
        canvas = _gradient_map(noise, colours)
    elif kind == "shapes":
        canvas = _shapes(rng, canvas_h, canvas_w, colours)
    else:
        canvas = _stripes(rng, canvas_h, canvas_w, colours)
    margin = np.array([(canvas_w - width) / 2, (canvas_h - height) / 2])
    travel = margin * 0.6 / max(frames, 1)
    return SyntheticBackground(
        canvas=canvas,
        kind=kind,
        centre=np.array([canvas_w / 2, canvas_h / 2]) + (rng.uniform(-0.3, 0.3, 2) * margin),
        drift=rng.uniform(-1, 1, 2) * travel if moving else np.zeros(2),
        shake=np.array(
            [rng.uniform(0, 0.08) * min(margin) if moving else 0.0, rng.uniform(0.05, 0.3), rng.random() * 6]
        ),
        zoom=np.array(
            [rng.uniform(1.0, 1.1), rng.uniform(0.0, 0.08) if moving else 0.0, rng.uniform(0.02, 0.1)]
        ),
        light=np.array([rng.uniform(0.0, 0.2), rng.uniform(0.02, 0.15), rng.random() * 6]),
        tint=rng.uniform(-0.06, 0.06, 3),
        spot=np.array(
            [
                rng.uniform(0, 0.35) * (rng.random() < 0.5),
                rng.uniform(0.2, 0.6),
                *rng.random(2),
                rng.uniform(-0.01, 0.01),
            ]
        ),
    )


def render_background(background: SyntheticBackground, t: float, height: int, width: int) -> np.ndarray:
    """The background seen by the camera at frame ``t``: ``(height, width, 3)`` float32 in [0, 1]."""
    amplitude, rate, phase = background.shake
    centre = (
        background.centre
        + background.drift * t
        + amplitude * np.array([np.sin(rate * t + phase), np.cos(0.7 * rate * t + phase)])
    )
    base, zoom_amp, zoom_rate = background.zoom
    zoom = base + zoom_amp * (0.5 - 0.5 * np.cos(zoom_rate * t))
    canvas_h, canvas_w = background.canvas.shape[:2]
    half = np.array([width, height]) / (2 * zoom)
    centre = np.clip(centre, half, np.array([canvas_w, canvas_h]) - half)
    affine = (1 / zoom, 0.0, centre[0] - half[0], 0.0, 1 / zoom, centre[1] - half[1])
    view = Image.fromarray(background.canvas).transform(
        (width, height), Image.Transform.AFFINE, affine, Image.BILINEAR
    )
    light_amp, light_rate, light_phase = background.light
    gain = (1.0 + light_amp * np.sin(light_rate * t + light_phase) + background.tint * np.sin(0.05 * t)) / 255
    strength, radius, sx, sy, speed = background.spot
    # a Gaussian spot is separable: the outer product of a column and a row profile
    ys = np.arange(height, dtype=np.float32) / width - (sy * height / width + speed * t)
    xs = np.arange(width, dtype=np.float32) / width - (sx + speed * t)
    spot = 1.0 + strength * np.outer(np.exp(-ys * ys / radius**2), np.exp(-xs * xs / radius**2))
    frame = np.asarray(view, np.float32) * (spot[..., None] * gain.astype(np.float32))
    return np.clip(frame, 0.0, 1.0, out=frame)


def _palette(rng: np.random.Generator, palette: np.ndarray | None) -> np.ndarray:
    if palette is None:
        return np.stack([random_colour(rng) for _ in range(3)])
    jitter = rng.normal(0.0, 0.06, (len(palette), 3))
    return np.clip(np.asarray(palette) + jitter, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=len(PHOTOS))
def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def list_photos(folders: tuple[str, ...]) -> tuple[str, ...]:
    """The image files in ``folders`` and their sub-folders, sorted.

    Raises:
        VidmatteError: a folder is missing, or none holds an image.
    """
    files: list[str] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise VidmatteError(f"{folder}: no such folder of background photographs")
        files += sorted(
            str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
    if not files:
        raise VidmatteError(f"{', '.join(folders)}: no background photograph")
    return tuple(files)


@functools.lru_cache(maxsize=256)
def _load_file(path: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.draft("RGB", (_PHOTO_SIDE, _PHOTO_SIDE))  # JPEGs decode at a reduced scale
            image = image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise VidmatteError(f"{path}: unreadable background photograph ({error})") from error
    image.thumbnail((_PHOTO_SIDE, _PHOTO_SIDE), Image.BILINEAR)
    return np.asarray(image, np.uint8)


def _photo(
    rng: np.random.Generator, height: int, width: int, colours: np.ndarray | None, photos: tuple[str, ...]
) -> np.ndarray:
    image = _load_file(str(rng.choice(photos))) if photos else _load_photo(str(rng.choice(PHOTOS)))
    if rng.random() < 0.5:
        image = image[:, ::-1]
    src_h, src_w = image.shape[:2]
    scale = max(height / src_h, width / src_w) * rng.uniform(1.0, 1.4)
    resized = np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize(
            (int(np.ceil(src_w * scale)), int(np.ceil(src_h * scale))), Image.BILINEAR
        )
    )
    y0 = int(rng.integers(0, resized.shape[0] - height + 1))
    x0 = int(rng.integers(0, resized.shape[1] - width + 1))
    crop = resized[y0 : y0 + height, x0 : x0 + width].astype(np.float32) / 255
    grey = image.ndim == 3 and np.ptp(image.astype(np.int16), axis=2).max() == 0
    if colours is not None or grey:
        # grey photos get a colour cast; look-alike backgrounds take the foreground's colours
        target = colours[0] if colours is not None else random_colour(rng)
        luma = crop.mean(axis=2, keepdims=True)
        crop = 0.35 * crop + 0.65 * luma * target * 1.6
    return (np.clip(crop, 0, 1) * 255).astype(np.uint8)


def _gradient_map(values: np.ndarray, colours: np.ndarray) -> np.ndarray:
    stops = np.linspace(0.0, 1.0, len(colours))
    mapped = np.stack([np.interp(values, stops, colours[:, c]) for c in range(3)], axis=-1)
    return (np.clip(mapped, 0, 1) * 255).astype(np.uint8)


def _shapes(rng: np.random.Generator, height: int, width: int, colours: np.ndarray) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None] * np.ones((1, width), np.float32)
    image = Image.fromarray(_gradient_map(ramp, colours[:2]))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(8, 30))):
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        size = rng.uniform(0.03, 0.35) * np.array([width, height])
        mix = rng.random()
        colour = colours[rng.integers(len(colours))] * mix + random_colour(rng) * (1 - mix)
        fill = tuple(int(c) for c in np.clip(colour, 0, 1) * 255)
        box = [x0, y0, x0 + size[0], y0 + size[1]]
        if rng.random() < 0.5:
            draw.rectangle(box, fill=fill)
        else:
            draw.ellipse(box, fill=fill)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 4.0))))
    return np.asarray(image, np.uint8)


def _stripes(rng: np.random.Generator, height: int, width: int, colours: np.ndarray) -> np.ndarray:
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(0.02, 0.2) * width
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = (xs * np.cos(angle) + ys * np.sin(angle)) / period
    values = 0.5 + 0.5 * np.tanh(2.5 * np.sin(2 * np.pi * along))
    if rng.random() < 0.5:
        across = (-xs * np.sin(angle) + ys * np.cos(angle)) / period
        values = values * (0.5 + 0.5 * np.tanh(2.5 * np.sin(2 * np.pi * across)))
    noise = value_noise(rng, max(height, width), 6, 3)[:height, :width]
    return _gradient_map(0.8 * values + 0.2 * noise, colours)
