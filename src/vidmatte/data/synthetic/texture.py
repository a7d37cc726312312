"""Procedural textures: tileable value noise and patterned materials (cloth, skin, hair, glass)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

PATTERNS = ("plain", "stripes", "checks", "dots", "noise")
SHEET_EXTENT = 0.8  # a texture sheet covers +-0.8 figure heights around the figure's pelvis


def value_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 3) -> np.ndarray:
    """Tileable fractal value noise.

    Args:
        size: side of the square output in pixels.
        cells: random values per side at the coarsest octave.

    Returns:
        ``(size, size)`` float32 in [0, 1].
    """
    total = np.zeros((size, size), np.float32)
    for octave in range(octaves):
        n = cells * 2**octave
        cell = int(np.ceil(size / n))
        # wrap-pad the grid so that bicubic interpolation joins the tile's edges
        grid = np.pad(rng.random((n, n)).astype(np.float32), 2, mode="wrap")
        up = Image.fromarray(grid, mode="F").resize(((n + 4) * cell, (n + 4) * cell), Image.BICUBIC)
        total += np.asarray(up)[2 * cell : 2 * cell + size, 2 * cell : 2 * cell + size] * 0.5**octave
    lo, hi = total.min(), total.max()
    return ((total - lo) / max(hi - lo, 1e-6)).astype(np.float32)


@dataclass(frozen=True)
class Material:
    """The look of a surface: two colours mixed by a pattern, with fine-grained noise.

    Attributes:
        base, accent: ``(3,)`` RGB in [0, 1].
        pattern: one of :data:`PATTERNS`.
        frequency: pattern repeats per figure height.
        angle: pattern orientation in radians.
        grain: strength of the fine noise (0 = none).
    """

    base: np.ndarray
    accent: np.ndarray
    pattern: str
    frequency: float
    angle: float
    grain: float = 0.08


def sample_cloth(rng: np.random.Generator, base: np.ndarray | None = None) -> Material:
    """A random cloth material; ``base`` fixes its main colour."""
    if base is None:
        base = random_colour(rng)
    accent = random_colour(rng) if rng.random() < 0.6 else np.clip(base * rng.uniform(0.4, 0.8), 0, 1)
    return Material(
        base=base,
        accent=accent,
        pattern=str(rng.choice(PATTERNS, p=[0.3, 0.2, 0.15, 0.1, 0.25])),
        frequency=float(rng.uniform(6, 30)),
        angle=float(rng.uniform(0, np.pi)),
        grain=float(rng.uniform(0.04, 0.14)),
    )


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour in [0, 1] with varied saturation and brightness, ``(3,)`` float32."""
    hue = rng.random()
    saturation = rng.uniform(0.05, 0.9)
    value = rng.uniform(0.15, 0.95)
    channel = np.abs(((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6) - 3) - 1
    return (value * (1 - saturation + saturation * np.clip(channel, 0, 1))).astype(np.float32)


def shade_material(
    material: Material, u: np.ndarray, v: np.ndarray, noise: np.ndarray, shade: np.ndarray
) -> np.ndarray:
    """Colour a surface.

    Args:
        u, v: surface coordinates in figure heights, broadcastable to ``(h, w)``.
        noise: ``(S, S)`` tileable value noise in [0, 1], sampled at ``(u, v)``.
        shade: ``(h, w)`` brightness factor (darker towards a limb's silhouette).

    Returns:
        ``(h, w, 3)`` float32 in [0, 1].
    """
    cos, sin = np.cos(material.angle), np.sin(material.angle)
    along = (u * cos + v * sin) * material.frequency
    across = (-u * sin + v * cos) * material.frequency
    if material.pattern == "stripes":
        mix = 0.5 + 0.5 * np.tanh(3 * np.sin(2 * np.pi * along))
    elif material.pattern == "checks":
        mix = 0.5 + 0.5 * np.tanh(3 * np.sin(2 * np.pi * along) * np.sin(2 * np.pi * across))
    elif material.pattern == "dots":
        fu, fv = along % 1.0 - 0.5, across % 1.0 - 0.5
        mix = np.clip((0.3 - np.sqrt(fu * fu + fv * fv)) * 12, 0, 1)
    elif material.pattern == "noise":
        mix = _sample(noise, along * 0.05, across * 0.05)
    else:
        mix = np.zeros(np.broadcast_shapes(np.shape(u), np.shape(v)), np.float32)
    grain = 1.0 + material.grain * (2 * _sample(noise, u * 3.1, v * 3.1) - 1)
    colour = material.base + (material.accent - material.base) * mix[..., None]
    return np.clip(colour * (grain * shade)[..., None], 0.0, 1.0).astype(np.float32)


def texture_sheet(material: Material, noise: np.ndarray, size: int) -> np.ndarray:
    """A material rendered once on a square of surface coordinates ``[-SHEET_EXTENT, SHEET_EXTENT]^2``,
    so that colouring a part is a lookup (the patterns cost transcendental functions per pixel).

    Returns:
        ``(size, size, 3)`` uint8 RGB; row ``i`` is ``v``, column ``j`` is ``u``.
    """
    coords = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1) * SHEET_EXTENT
    colour = shade_material(
        material, coords[None, :], coords[:, None], noise, np.ones((size, size), np.float32)
    )
    return (colour * 255 + 0.5).astype(np.uint8)


def look_up(sheet: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colours of a texture sheet at surface coordinates ``u (1, w)``, ``v (h, 1)``: ``(h, w, 3)`` float32."""
    size = sheet.shape[0]
    scale = size / (2 * SHEET_EXTENT)
    iu = np.clip((u + SHEET_EXTENT) * scale, 0, size - 1).astype(np.intp)
    iv = np.clip((v + SHEET_EXTENT) * scale, 0, size - 1).astype(np.intp)
    return sheet[iv, iu].astype(np.float32) * np.float32(1 / 255)


def _sample(noise: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    size = noise.shape[0]
    iu = (np.asarray(u) * size).astype(np.int64) % size
    iv = (np.asarray(v) * size).astype(np.int64) % size
    return noise[iv, iu]
