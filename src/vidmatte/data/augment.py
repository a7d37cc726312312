"""Clip-consistent augmentation for matting training, after Robust Video Matting's recipe.

Every random choice is made once per clip and either held or interpolated smoothly over time:
an affine motion (translation, rotation, scale, shear) eased from a start to an end pose, a resized
crop, a horizontal flip, a colour jitter that drifts, a defocus blur, and sensor noise on the
composite. The foreground colour and all of its alphas receive the same geometry, so the matting
equation still holds after augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentations (all drawn per clip).

    Attributes:
        size: output ``(height, width)``.
        crop_scale: range of the crop side as a fraction of the largest crop of the output's
            aspect ratio (1 = the largest crop; above 1 zooms out, leaving an empty border).
        flip: probability of a horizontal flip.
        motion: probability of an affine motion over the clip (otherwise a fixed affine).
        translate: largest translation, as a fraction of the output size.
        rotate: largest rotation in degrees.
        scale: largest zoom factor change (``1 +- scale``).
        shear: largest shear in degrees.
        brightness, contrast, saturation: largest relative change.
        hue: largest hue rotation, as a fraction of a full turn.
        blur: probability of a defocus blur; ``blur_sigma`` its largest sigma in pixels.
        noise: probability of Gaussian sensor noise on the composite; ``noise_sigma`` its
            largest standard deviation.
        anchor_bottom: keep the source's bottom edge on the output's bottom edge, so that a
            person cut off by the bottom of the frame stays cut off by it when zoomed out.
    """

    size: tuple[int, int] = (288, 512)
    crop_scale: tuple[float, float] = (0.6, 1.0)
    flip: float = 0.5
    motion: float = 0.5
    translate: float = 0.1
    rotate: float = 10.0
    scale: float = 0.15
    shear: float = 5.0
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.2
    hue: float = 0.03
    blur: float = 0.1
    blur_sigma: float = 1.5
    noise: float = 0.3
    noise_sigma: float = 0.02
    anchor_bottom: bool = False


@dataclass(frozen=True)
class Geometry:
    """A clip's geometric augmentation: one inverse affine per frame (output -> source pixels).

    Coordinates are continuous with pixel centres at ``i + 0.5`` (Pillow's convention), so a
    mirror is ``x -> W - x``.

    Attributes:
        matrices: ``(T, 2, 3)`` maps an output pixel (x, y, 1) to a source pixel.
        size: output ``(height, width)``.
    """

    matrices: np.ndarray
    size: tuple[int, int]


_INSIDE_TRIES = 8


def sample_geometry(
    rng: np.random.Generator,
    frames: int,
    source: tuple[int, int],
    config: AugmentConfig,
    *,
    inside: bool = False,
) -> Geometry:
    """Draw a clip's crop, flip and (possibly moving) affine transform.

    Args:
        source: the source frames' ``(height, width)``.
        inside: every output pixel must come from inside the source (backgrounds have no empty
            corners): draws again a few times, then falls back to a still crop.
    """
    if not inside:
        return _draw_geometry(rng, frames, source, config)
    for _ in range(_INSIDE_TRIES):
        geometry = _draw_geometry(rng, frames, source, config)
        if _covers(geometry, source):
            return geometry
    still = replace(config, motion=0.0, translate=0.0, rotate=0.0, scale=0.0, shear=0.0)
    return _draw_geometry(rng, frames, source, still)


def _covers(geometry: Geometry, source: tuple[int, int]) -> bool:
    out_h, out_w = geometry.size
    corners = np.array([[0.0, 0.0, 1.0], [out_w, 0.0, 1.0], [0.0, out_h, 1.0], [out_w, out_h, 1.0]])
    mapped = np.einsum("tij,kj->tki", geometry.matrices, corners)
    slack = 1e-3
    return bool(
        (mapped[..., 0] >= -slack).all()
        and (mapped[..., 0] <= source[1] + slack).all()
        and (mapped[..., 1] >= -slack).all()
        and (mapped[..., 1] <= source[0] + slack).all()
    )


def _draw_geometry(
    rng: np.random.Generator, frames: int, source: tuple[int, int], config: AugmentConfig
) -> Geometry:
    out_h, out_w = config.size
    src_h, src_w = source
    # the largest crop of the output's aspect ratio, shrunk by crop_scale, placed at random
    fit = min(src_h / out_h, src_w / out_w)
    zoom = fit * rng.uniform(*config.crop_scale)
    crop_w, crop_h = out_w * zoom, out_h * zoom
    # a crop larger than the source (crop_scale above 1) zooms out: the border is empty (zero)
    x0 = rng.uniform(min(0.0, src_w - crop_w), max(0.0, src_w - crop_w))
    y0 = rng.uniform(min(0.0, src_h - crop_h), max(0.0, src_h - crop_h))
    if config.anchor_bottom:
        y0 = src_h - crop_h
    crop = np.array([[zoom, 0.0, x0], [0.0, zoom, y0], [0.0, 0.0, 1.0]])
    flip = np.eye(3)
    if rng.random() < config.flip:
        flip = np.array([[-1.0, 0.0, float(out_w)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    start = _random_affine(rng, config)
    end = _random_affine(rng, config) if rng.random() < config.motion else start
    centre = np.array([[1.0, 0.0, out_w / 2], [0.0, 1.0, out_h / 2], [0.0, 0.0, 1.0]])
    matrices = []
    for t in range(frames):
        s = t / max(frames - 1, 1)
        ease = s * s * (3 - 2 * s)  # smoothstep: starts and stops gently
        angle, scale, shear, tx, ty = start + (end - start) * ease
        affine = _affine(angle, scale, shear, tx * out_w, ty * out_h)
        # output pixel -> undo the affine about the centre -> flip -> crop -> source pixel
        forward = centre @ affine @ np.linalg.inv(centre)
        matrices.append((crop @ flip @ np.linalg.inv(forward))[:2])
    return Geometry(np.stack(matrices), (out_h, out_w))


def _random_affine(rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    return np.array(
        [
            np.deg2rad(rng.uniform(-config.rotate, config.rotate)),
            1.0 + rng.uniform(-config.scale, config.scale),
            np.deg2rad(rng.uniform(-config.shear, config.shear)),
            rng.uniform(-config.translate, config.translate),
            rng.uniform(-config.translate, config.translate),
        ]
    )


def _affine(angle: float, scale: float, shear: float, tx: float, ty: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    shearing = np.array([[1.0, np.tan(shear), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return np.array([[scale, 0.0, tx], [0.0, scale, ty], [0.0, 0.0, 1.0]]) @ rotation @ shearing


def warp(images: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Apply a clip's geometry with bilinear sampling (zero outside the source).

    Args:
        images: ``(T, H, W)`` or ``(T, H, W, C)`` float32.

    Returns:
        ``(T, h, w)`` or ``(T, h, w, C)`` float32 at ``geometry.size``.
    """
    out_h, out_w = geometry.size
    planes = images if images.ndim == 4 else images[..., None]
    out = np.empty((planes.shape[0], out_h, out_w, planes.shape[3]), np.float32)
    for t, matrix in enumerate(geometry.matrices):
        coefficients = tuple(float(v) for v in matrix.reshape(-1))
        for c in range(planes.shape[3]):
            plane = Image.fromarray(np.ascontiguousarray(planes[t, :, :, c], dtype=np.float32), mode="F")
            out[t, :, :, c] = np.asarray(
                plane.transform((out_w, out_h), Image.Transform.AFFINE, coefficients, Image.BILINEAR)
            )
    return out if images.ndim == 4 else out[..., 0]


def jitter_colour(rng: np.random.Generator, images: np.ndarray, config: AugmentConfig) -> np.ndarray:
    """Brightness, contrast, saturation and hue changes drawn per clip, drifting linearly over time.

    Args:
        images: ``(T, H, W, 3)`` float32 in [0, 1].

    Returns:
        ``(T, H, W, 3)`` float32 in [0, 1].
    """
    frames = images.shape[0]
    ramp = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None, None, None]

    def drift(amount: float) -> np.ndarray:
        a, b = rng.uniform(-amount, amount, 2)
        return (1.0 + a + (b - a) * ramp).astype(np.float32)

    brightness, contrast, saturation = (
        drift(config.brightness),
        drift(config.contrast),
        drift(config.saturation),
    )
    grey = images @ np.array([0.299, 0.587, 0.114], np.float32)
    out = (images - grey[..., None]) * saturation + grey[..., None]
    mean = grey.mean(axis=(1, 2), keepdims=True)[..., None]
    out = ((out - mean) * contrast + mean) * brightness
    angle = 2 * np.pi * rng.uniform(-config.hue, config.hue)
    if angle:
        out = out @ _hue_rotation(angle).T
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _hue_rotation(angle: float) -> np.ndarray:
    # rotate chroma about the grey axis in YIQ space
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    return (np.linalg.inv(to_yiq) @ rotation @ to_yiq).astype(np.float32)


def defocus(rng: np.random.Generator, images: np.ndarray, config: AugmentConfig) -> np.ndarray:
    """With probability ``config.blur``, a Gaussian blur of one sigma for the whole clip.

    Args:
        images: ``(T, H, W)`` or ``(T, H, W, C)`` float32.
    """
    if rng.random() >= config.blur:
        return images
    sigma = rng.uniform(0.3, config.blur_sigma)
    sigmas = (0, sigma, sigma) + ((0,) if images.ndim == 4 else ())
    return gaussian_filter(images, sigmas).astype(np.float32)


def add_noise(rng: np.random.Generator, images: np.ndarray, config: AugmentConfig) -> np.ndarray:
    """With probability ``config.noise``, Gaussian noise of one random sigma, clipped to [0, 1]."""
    if rng.random() >= config.noise:
        return images
    sigma = rng.uniform(0.0, config.noise_sigma)
    return np.clip(images + rng.normal(0.0, sigma, images.shape).astype(np.float32), 0.0, 1.0)


@dataclass(frozen=True)
class Augmented:
    """An augmented training clip; all arrays float32 in [0, 1] at the configured size.

    Attributes:
        com: ``(T, h, w, 3)`` composite, ``fgr * pha + bgr * (1 - pha)`` plus noise.
        fgr, bgr: ``(T, h, w, 3)``.
        pha: ``(T, h, w)`` combined alpha (the sum of ``alphas``).
        alphas: ``(N, T, h, w)`` per-instance alphas.
    """

    com: np.ndarray
    fgr: np.ndarray
    bgr: np.ndarray
    pha: np.ndarray
    alphas: np.ndarray


def augment_clip(
    rng: np.random.Generator, fgr: np.ndarray, alphas: np.ndarray, bgr: np.ndarray, config: AugmentConfig
) -> Augmented:
    """Augment a foreground (with its alphas) and a background independently, then composite.

    Args:
        fgr: ``(T, H, W, 3)`` combined foreground colour.
        alphas: ``(N, T, H, W)`` per-instance alphas (``N = 1`` for plain matting).
        bgr: ``(T, H', W', 3)`` background (any size; it gets its own crop and motion).
    """
    frames = fgr.shape[0]
    geometry = sample_geometry(rng, frames, fgr.shape[1:3], config)
    fgr_out = jitter_colour(rng, warp(fgr, geometry), config)
    alphas_out = np.stack([warp(a, geometry) for a in alphas]).clip(0.0, 1.0)
    blurred = defocus(rng, np.concatenate([fgr_out, alphas_out.transpose(1, 2, 3, 0)], axis=-1), config)
    fgr_out, alphas_out = blurred[..., :3], blurred[..., 3:].transpose(3, 0, 1, 2).clip(0.0, 1.0)
    camera = sample_geometry(rng, frames, bgr.shape[1:3], config, inside=True)
    bgr_out = jitter_colour(rng, warp(bgr, camera), config)
    bgr_out = defocus(rng, bgr_out, config)
    pha = alphas_out.sum(axis=0).clip(0.0, 1.0)
    com = fgr_out * pha[..., None] + bgr_out * (1.0 - pha[..., None])
    return Augmented(
        com=add_noise(rng, com.astype(np.float32), config),
        fgr=np.ascontiguousarray(fgr_out),
        bgr=bgr_out,
        pha=pha.astype(np.float32),
        alphas=np.ascontiguousarray(alphas_out),
    )
