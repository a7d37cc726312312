"""Hair as many thin strands (0.4 to 3 pixels wide) that fall under gravity and sway with motion.

Each strand is a curve grown from a root on the scalp: it leaves the head along the outward
normal (long hair) or along the scalp (short hair), bends towards the ground, curls, and swings
away from the direction the head moves. Strands are splatted with bilinear weights
(:func:`vidmatte.data.synthetic.raster.splat_strands`), so most of a strand's pixels get a partial alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidmatte.data.synthetic.raster import Window, splat_strands

_MAX_SAMPLES = 1024  # samples along the longest strand: about one per pixel, up to 1024 px
_LANES = 3  # a strand up to 3 px wide is drawn as up to 3 parallel one-pixel lanes
_DENSITY_TO_ALPHA = 1.3  # alpha = 1 - exp(-k * density): overlapping strands saturate


@dataclass(frozen=True)
class Hair:
    """Per-strand parameters of one head of hair, sampled once per figure.

    Attributes:
        root_angle: ``(S,)`` position of each root on the head outline (radians, 0 = right,
            -pi/2 = top, in the head's frame).
        direction: ``(S,)`` angle the strand leaves the scalp at, relative to the outward normal.
        length: ``(S,)`` strand length as a fraction of the figure's height.
        width: ``(S,)`` strand width in pixels (0.4 to 3).
        opacity: ``(S,)`` in (0, 1].
        gravity: ``(S,)`` how fast the strand turns to point down (larger is faster).
        curl: ``(S, 3)`` amplitude (radians), frequency (turns per strand) and phase of the curl.
        shade: ``(S,)`` brightness of each strand relative to ``colour``.
        colour: ``(3,)`` base RGB in [0, 1].
    """

    root_angle: np.ndarray
    direction: np.ndarray
    length: np.ndarray
    width: np.ndarray
    opacity: np.ndarray
    gravity: np.ndarray
    curl: np.ndarray
    shade: np.ndarray
    colour: np.ndarray


def sample_hair(rng: np.random.Generator, colour: np.ndarray, long: bool, length: float) -> Hair:
    """Sample a head of hair.

    Args:
        colour: ``(3,)`` base hair colour in [0, 1].
        long: long hair (hangs from the top arc of the head) or short hair (lies along the scalp).
        length: typical strand length as a fraction of the figure's height.
    """
    count = int(rng.integers(260, 480) if long else rng.integers(140, 260))
    flyaway = rng.random(count) < 0.07
    root_angle = rng.uniform(-np.pi + 0.15, -0.15, count) if long else rng.uniform(-np.pi - 0.3, 0.3, count)
    side = np.where(np.cos(root_angle) >= 0, 1.0, -1.0)
    if long:
        direction = side * rng.uniform(0.7, 1.3, count)  # along the scalp, then falling past the ears
        lengths = length * rng.uniform(0.55, 1.1, count)
        gravity = rng.uniform(1.5, 3.5, count)
    else:
        direction = side * rng.uniform(0.9, 1.4, count)  # along the scalp, towards the ears
        lengths = length * rng.uniform(0.4, 1.0, count)
        gravity = rng.uniform(0.3, 1.2, count)
    direction = np.where(flyaway, rng.normal(0.0, 0.5, count), direction)
    lengths = np.where(flyaway, length * rng.uniform(0.15, 0.5, count), lengths)
    gravity = np.where(flyaway, rng.uniform(0.1, 0.8, count), gravity)
    width = 0.4 + 2.6 * rng.random(count) ** 2.5
    opacity = np.where(flyaway, rng.uniform(0.25, 0.6, count), rng.uniform(0.6, 1.0, count))
    # one waviness per head (straight, wavy or curly), varied a little from strand to strand
    wave = rng.choice([0.05, 0.3, 0.7], p=[0.5, 0.35, 0.15])
    turns = rng.uniform(1.0, 3.0) if wave < 0.6 else rng.uniform(3.0, 6.0)
    curl = np.stack(
        [
            wave * rng.uniform(0.5, 1.0, count),
            turns * rng.uniform(0.8, 1.25, count),
            rng.uniform(0, 2 * np.pi, count),
        ],
        1,
    )
    as32 = np.float32
    return Hair(
        root_angle=root_angle.astype(as32),
        direction=direction.astype(as32),
        length=lengths.astype(as32),
        width=width.astype(as32),
        opacity=opacity.astype(as32),
        gravity=gravity.astype(as32),
        curl=curl.astype(as32),
        shade=rng.uniform(0.7, 1.35, count).astype(as32),
        colour=np.asarray(colour, np.float32),
    )


def strand_points(
    hair: Hair, centre: np.ndarray, radii: tuple[float, float], angle: float, height: float, sway: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample points along every strand, ready for :func:`vidmatte.data.synthetic.raster.splat_strands`.

    Args:
        centre: ``(2,)`` head centre (x, y) in pixels.
        radii: the head's semi-axes (rx, ry) in pixels.
        angle: head rotation in radians.
        height: the figure's height in pixels (strand lengths are fractions of it).
        sway: rotation (radians) applied progressively along each strand, positive turns the
            hanging part towards -x (hair trailing behind a figure that moves towards +x).

    Returns:
        ``points (N, 2)``, ``weights (N,)``, ``shades (N,)``.
    """
    rx, ry = radii
    angle = float(angle)  # a Python float keeps the arrays below float32
    samples = int(min(_MAX_SAMPLES, max(8, np.ceil(hair.length.max() * height))))
    u = (np.arange(samples, dtype=np.float32) + 0.5) / samples
    normal = hair.root_angle + angle
    roots = np.stack([rx * 0.93 * np.cos(hair.root_angle), ry * 0.93 * np.sin(hair.root_angle)], 1)
    cos, sin = np.cos(angle), np.sin(angle)
    roots = (centre[None, :] + roots @ np.array([[cos, sin], [-sin, cos]])).astype(np.float32)
    start = normal + hair.direction
    turn = np.angle(np.exp(1j * (np.pi / 2 - start))).astype(
        np.float32
    )  # shortest turn towards straight down
    bend = turn[:, None] * (1.0 - np.exp(-hair.gravity[:, None] * u[None, :]))
    amplitude, frequency, phase = hair.curl[:, 0:1], hair.curl[:, 1:2], hair.curl[:, 2:3]
    heading = (
        start[:, None]
        + bend
        + np.float32(sway) * u[None, :] ** 1.5
        + amplitude * np.sin(2 * np.pi * frequency * u + phase)
    )
    step = (hair.length * np.float32(height / samples))[:, None]
    dx, dy = np.cos(heading), np.sin(heading)
    xs = roots[:, 0:1] + np.cumsum(step * dx, axis=1)
    ys = roots[:, 1:2] + np.cumsum(step * dy, axis=1)
    lanes = np.ceil(hair.width).clip(1, _LANES)  # float32, as every array here
    points, weights = [], []
    for lane in range(_LANES):
        offset = (lane - (lanes - 1) / 2)[:, None] * np.float32(0.8)
        present = (lane < lanes)[:, None]
        points.append(np.stack([xs - offset * dy, ys + offset * dx], -1)[np.broadcast_to(present, xs.shape)])
        weight = (hair.width / lanes * hair.opacity)[:, None] * step
        weights.append(np.broadcast_to(weight, xs.shape)[np.broadcast_to(present, xs.shape)])
    shade = np.broadcast_to(hair.shade[:, None], xs.shape)
    shades = [shade[np.broadcast_to((lane < lanes)[:, None], xs.shape)] for lane in range(_LANES)]
    return np.concatenate(points), np.concatenate(weights), np.concatenate(shades)


def render_hair(
    hair: Hair, points: np.ndarray, weights: np.ndarray, shades: np.ndarray, window: Window
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise strand points into ``alpha (h, w)`` and ``colour (h, w, 3)``, float32 in [0, 1]."""
    density, shade = splat_strands(points, weights, shades, window)
    colour = np.clip(shade[..., None] * hair.colour, 0.0, 1.0)
    return (1.0 - np.exp(-_DENSITY_TO_ALPHA * density)).astype(np.float32), colour.astype(np.float32)
