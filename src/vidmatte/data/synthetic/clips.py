"""Synthetic video matting clips: articulated figures with hair and transparent parts, composited
over moving backgrounds, with exact ground truth.

>>> clip = generate_clip(0, ClipSpec(frames=4, width=64, height=48))
>>> clip.com.shape, clip.alphas.shape
((4, 48, 64, 3), (1, 4, 48, 64))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidmatte.data.synthetic.background import list_photos, render_background, sample_background
from vidmatte.data.synthetic.figure import FigureParams, render_figure, sample_figure
from vidmatte.io.composite import composite, over_premultiplied, unpremultiply

_HEAD_TOP = 0.46  # head top above the pelvis, in figure heights
_FEET = 0.49  # feet below the pelvis, in figure heights
_MAX_SPEED = 0.035  # figure heights per frame (a brisk walk)
_RUN_SPEED = 0.07  # figure heights per frame (a jog), for figures that must cross the frame's edge
_OFF_SCREEN = 0.3  # a pelvis this many figure heights past the edge leaves the figure out of view


@dataclass(frozen=True)
class ClipSpec:
    """What to generate.

    Attributes:
        frames, width, height: clip length and frame size in pixels.
        instances: (min, max) number of figures per clip, both inclusive (max at most 4 for
            clips where they should all fit).
        camera_motion: probability that the camera pans and zooms.
        lookalike: probability that the background takes a figure's colours.
        veil, glass: probability that a figure wears a veil / holds a glass.
        far: probability that a clip of several figures is a far view (a street seen from a
            distance): figures 20-50% of their usual size, standing in the middle of the frame.
        close: probability that a clip of one figure is a close-up (head and shoulders, as in a
            film or a video call): the figure 2-4 times the frame's height instead of 0.8-1.5.
        backgrounds: folders of real photographs (searched recursively, e.g. the ``backgrounds``
            folder of ``scripts/fetch_real_images.py``) that photo backgrounds are drawn from
            instead of scikit-image's samples; ``()``: the samples.
    """

    frames: int = 50
    width: int = 512
    height: int = 288
    instances: tuple[int, int] = (1, 1)
    camera_motion: float = 0.5
    lookalike: float = 0.25
    veil: float = 0.2
    glass: float = 0.2
    far: float = 0.0
    close: float = 0.0
    backgrounds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        low, high = self.instances
        if self.frames < 1 or self.width < 8 or self.height < 8:
            raise ValueError(f"clip of {self.frames} frames of {self.width}x{self.height} is too small")
        if not 1 <= low <= high:
            raise ValueError(f"instances must be 1 <= min <= max, got {low}-{high}")


@dataclass
class Clip:
    """A generated clip; every array is float32 in [0, 1].

    Attributes:
        com: ``(T, H, W, 3)`` composite frames, ``fgr * pha + bgr * (1 - pha)``.
        fgr: ``(T, H, W, 3)`` combined foreground colour.
        bgr: ``(T, H, W, 3)`` background.
        pha: ``(T, H, W)`` combined alpha.
        alphas: ``(N, T, H, W)`` each figure's visible alpha (parts hidden by figures in front
            removed), ordered back to front; they sum to ``pha``.
        hidden: ``(N, T)`` the fraction of each figure's alpha hidden by figures in front.
        moving_camera: whether the camera pans and zooms.
        seed: the seed that generated the clip.
    """

    com: np.ndarray
    fgr: np.ndarray
    bgr: np.ndarray
    pha: np.ndarray
    alphas: np.ndarray
    hidden: np.ndarray
    moving_camera: bool
    seed: int


def plan_figures(rng: np.random.Generator, spec: ClipSpec, count: int) -> list[FigureParams]:
    """Sample ``count`` figures with paths, back to front.

    One figure stays near the middle of the frame, framed from the head down. Several figures
    stand at different depths (nearer is larger and lower); the first two cross each other
    near the middle of the clip (the second often jogging in from off screen or out of view),
    the others walk in from, or out of, the sides.
    """
    h_frame, w_frame, frames = spec.height, spec.width, spec.frames
    if count == 1:
        height = rng.uniform(0.8, 1.5) * h_frame
        # drawn only when close-ups are asked for, so that other specs keep their clips
        if spec.close > 0 and rng.random() < spec.close:
            height = rng.uniform(2.0, 4.0) * h_frame
        pelvis_y = rng.uniform(0.02, 0.15) * h_frame + _HEAD_TOP * height
        speed = rng.uniform(0.0, 0.02) * height * (rng.random() < 0.5)
        velocity = np.array([rng.choice([-1, 1]) * speed, 0.0])
        start = np.array([rng.uniform(0.3, 0.7) * w_frame, pelvis_y]) - velocity * frames / 2
        return [sample_figure(rng, height, start, velocity, veil_prob=spec.veil, glass_prob=spec.glass)]
    heights = np.sort(rng.uniform(0.45, 0.85, count)) * h_frame
    # drawn only when far views are asked for, so that other specs keep their clips
    far = spec.far > 0 and rng.random() < spec.far
    if far:
        heights *= rng.uniform(0.2, 0.5)
    figures = []
    direction = rng.choice([-1.0, 1.0])
    meet = rng.uniform(0.35, 0.65) * (frames - 1)
    x_meet = (0.5 + rng.uniform(-0.15, 0.15)) * w_frame
    for index, height in enumerate(heights):
        depth = index / (count - 1)
        ground = 0.45 + 0.35 * depth if far else 0.85 + 0.2 * depth
        feet = (ground + rng.uniform(-0.03, 0.03)) * h_frame
        if index < 2:
            # the first two pass the same point at the same time, in opposite directions
            speed = rng.uniform(0.3, 1.0) * _MAX_SPEED * height
            if index == 1 and rng.random() < 0.6:
                # the second one walks in from off screen, or out of view, if it can do so at a jog
                enters = rng.random() < 0.5
                ahead = direction > 0  # the edge it walks towards
                edge = (w_frame if ahead else 0.0) + (1 if ahead else -1) * _OFF_SCREEN * height
                behind = (0.0 if ahead else w_frame) - (1 if ahead else -1) * _OFF_SCREEN * height
                distance, time = (
                    (abs(x_meet - behind), meet) if enters else (abs(edge - x_meet), frames - 1 - meet)
                )
                if time > 0 and distance / time <= _RUN_SPEED * height:
                    speed = max(speed, distance / time)
            velocity = np.array([direction * speed, 0.0])
            start_x = x_meet + (index - 0.5) * 0.1 * height - velocity[0] * meet
            direction = -direction
        else:
            # the others cross a side edge (pelvis on the edge line) in the first or last 40% of
            # the clip, walking in or out: each is in view for at least 60% of the frames
            speed = rng.uniform(0.6, 1.0) * _MAX_SPEED * height
            enters = rng.random() < 0.5
            side = rng.choice([-1.0, 1.0])
            edge = w_frame / 2 + side * w_frame / 2
            velocity = np.array([-side * speed if enters else side * speed, 0.0])
            at_edge = (rng.uniform(0.0, 0.4) if enters else rng.uniform(0.6, 1.0)) * (frames - 1)
            start_x = edge - velocity[0] * at_edge
        start = np.array([start_x, feet - _FEET * height])
        figures.append(
            sample_figure(rng, height, start, velocity, veil_prob=spec.veil, glass_prob=spec.glass)
        )
    return figures


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip ``index`` of a set generated with ``seed`` (independent streams per clip)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def generate_clip(seed: int, spec: ClipSpec = ClipSpec()) -> Clip:
    """Generate one clip; the same ``seed`` and ``spec`` always give the same clip.

    Args:
        seed: any non-negative integer.
        spec: clip size, length, number of figures and probabilities of the hard cases.
    """
    rng = np.random.default_rng(seed)
    low, high = spec.instances
    count = int(rng.integers(low, high + 1))
    figures = plan_figures(rng, spec, count)
    moving = bool(rng.random() < spec.camera_motion)
    palette = figures[-1].palette if rng.random() < spec.lookalike else None
    photos = list_photos(spec.backgrounds) if spec.backgrounds else ()
    background = sample_background(
        rng, spec.height, spec.width, spec.frames, moving=moving, palette=palette, photos=photos
    )
    shape = (spec.frames, spec.height, spec.width)
    fgr = np.empty((*shape, 3), np.float32)
    bgr = np.empty((*shape, 3), np.float32)
    pha = np.empty(shape, np.float32)
    alphas = np.zeros((count, *shape), np.float32)
    hidden = np.zeros((count, spec.frames), np.float32)
    premultiplied = np.empty((spec.height, spec.width, 3), np.float32)
    fallback = figures[-1].palette[0].astype(np.float32)  # colour where no figure is
    for t in range(spec.frames):
        # stack the figures back to front, touching only the window each one covers
        pha[t] = 0.0
        premultiplied[...] = 0.0
        area = np.zeros(count, np.float32)
        for index, figure in enumerate(figures):
            alpha, layer, window = render_figure(figure, float(t), spec.height, spec.width)
            if window.empty:
                continue
            region = (slice(window.y0, window.y1), slice(window.x0, window.x1))
            alphas[:index, t][(slice(None), *region)] *= 1.0 - alpha
            alphas[index, t][region] = alpha
            over_premultiplied(pha[t][region], premultiplied[region], alpha, layer)
            area[index] = alpha.sum()
        fgr[t] = unpremultiply(pha[t], premultiplied, fallback)
        hidden[:, t] = (area - alphas[:, t].sum(axis=(1, 2))) / np.maximum(area, 1e-6)
        bgr[t] = render_background(background, float(t), spec.height, spec.width)
    return Clip(
        com=composite(fgr, pha, bgr),
        fgr=fgr,
        bgr=bgr,
        pha=pha,
        alphas=alphas,
        hidden=hidden,
        moving_camera=moving,
        seed=seed,
    )
