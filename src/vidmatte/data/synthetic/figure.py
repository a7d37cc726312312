"""Procedural articulated human figures: a skeleton that walks and gestures, fleshed out with
smooth shapes, textured clothes, hair strands, and optional semi-transparent parts (a veil, a
glass). Fast limbs are motion blurred by averaging their coverage over the shutter time.

Coordinates are pixels, x to the right and y down; a figure's proportions are fractions of its
height (head top to feet). Limb angles are measured from straight down, positive towards the
direction the figure faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from vidmatte.data.synthetic.hair import Hair, render_hair, sample_hair, strand_points
from vidmatte.data.synthetic.raster import (
    Window,
    box_window,
    capsule_field,
    coverage,
    ellipse_field,
    union_box,
)
from vidmatte.data.synthetic.texture import (
    SHEET_EXTENT,
    Material,
    look_up,
    random_colour,
    sample_cloth,
    texture_sheet,
    value_noise,
)
from vidmatte.io.composite import over

SHUTTER = 0.5  # exposure as a fraction of the frame interval (a 180 degree shutter)
_BLUR_STEP = 1.5  # one extra shutter sample per this many pixels a part moves during exposure
# instants of the exposure at which a blurred part is sampled: 3 or all 5 of these, so that the
# poses computed for one part serve the others
_SHUTTER_OFFSETS = tuple(float(o) for o in np.linspace(-SHUTTER / 2, SHUTTER / 2, 5))

SKIN_TONES = np.array(
    [[0.96, 0.80, 0.69], [0.91, 0.72, 0.58], [0.80, 0.59, 0.45], [0.62, 0.43, 0.30], [0.40, 0.26, 0.18]],
    np.float32,
)
HAIR_COLOURS = np.array(
    [[0.05, 0.04, 0.04], [0.20, 0.12, 0.07], [0.40, 0.25, 0.14], [0.82, 0.66, 0.42], [0.55, 0.20, 0.08],
     [0.72, 0.72, 0.70]],
    np.float32,
)  # fmt: skip

SKIN, TOP, BOTTOM, SHOES, HAIR, VEIL, GLASS, EYES = range(8)


@dataclass(frozen=True)
class FigureParams:
    """Everything that defines one figure and its motion over a clip.

    Attributes:
        height: figure height in pixels.
        start: ``(2,)`` pelvis position (x, y) at frame 0.
        velocity: ``(2,)`` pelvis velocity in pixels per frame.
        facing: +1 facing +x, -1 facing -x.
        frontal: 0 for a side view, 1 for a frontal view.
        step_rate: walking phase speed in radians per frame; ``phase`` its value at frame 0.
        stride: hip swing amplitude (radians); ``arm_swing`` the shoulders'.
        gesture: ``(2, 3)`` per arm (back, front): raise amplitude (radians), rate (radians per
            frame), phase.
        lean: torso lean (radians, positive tilts the top towards +x); ``sway`` head tilt amplitude.
        build: ``(5,)`` shoulder half-width, hip half-width, chest radius, waist radius, limb
            thickness factor (fractions of the height).
        head_radius: head's horizontal semi-axis as a fraction of the height.
        dress, long_sleeves, shorts: clothing options.
        hair: the strands (``None``: no hair); ``long_hair`` adds a mass of hair behind the head.
        veil, glass: semi-transparent parts; ``veil_opacity`` the veil's alpha.
        materials: surfaces indexed by ``SKIN, TOP, BOTTOM, SHOES, HAIR, VEIL, GLASS, EYES``.
        textures: ``(8, S, S, 3)`` uint8, each material rendered on the figure's surface
            coordinates (see :func:`vidmatte.data.synthetic.texture.texture_sheet`).
    """

    height: float
    start: np.ndarray
    velocity: np.ndarray
    facing: float
    frontal: float
    step_rate: float
    phase: float
    stride: float
    arm_swing: float
    gesture: np.ndarray
    lean: float
    sway: float
    build: np.ndarray
    head_radius: float
    dress: bool
    long_sleeves: bool
    shorts: bool
    hair: Hair | None
    long_hair: bool
    hair_length: float
    veil: bool
    veil_opacity: float
    glass: bool
    materials: tuple[Material, ...]
    textures: np.ndarray

    @property
    def palette(self) -> np.ndarray:
        """``(3, 3)`` the figure's dominant colours (top, bottom, hair), for look-alike backgrounds."""
        return np.stack([self.materials[TOP].base, self.materials[BOTTOM].base, self.materials[HAIR].base])


def sample_figure(
    rng: np.random.Generator,
    height: float,
    start: np.ndarray,
    velocity: np.ndarray,
    *,
    veil_prob: float = 0.2,
    glass_prob: float = 0.2,
) -> FigureParams:
    """Sample a figure's look and gait; its path (``start``, ``velocity``) comes from the caller.

    A figure that moves fast walks side-on with long strides; a slow one faces the camera and
    gestures.
    """
    speed = float(np.hypot(*velocity)) / height  # figure heights per frame
    walking = speed > 0.002
    facing = float(np.sign(velocity[0])) if abs(velocity[0]) > 1e-6 else float(rng.choice([-1.0, 1.0]))
    frontal = float(rng.uniform(0.0, 0.45) if walking else rng.uniform(0.6, 1.0))
    stride = float(np.clip(speed * 60, 0.25, 0.55) if walking else rng.uniform(0.0, 0.06))
    step_rate = float(speed / (0.9 * max(stride, 0.1)) * np.pi if walking else rng.uniform(0.05, 0.15))
    gesture = np.stack(
        [
            rng.uniform(0.0, 2.4, 2) * (rng.random(2) < (0.3 if walking else 0.75)),
            rng.uniform(0.03, 0.15, 2),
            rng.uniform(0, 2 * np.pi, 2),
        ],
        1,
    )
    skin_tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.92, 1.06, 3)
    hair_colour = (
        HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] if rng.random() < 0.85 else random_colour(rng)
    ) * rng.uniform(0.9, 1.1, 3)
    long_hair = bool(rng.random() < 0.55)
    hair_length = float(rng.uniform(0.12, 0.32) if long_hair else rng.uniform(0.03, 0.07))
    hair = (
        None if rng.random() < 0.05 else sample_hair(rng, np.clip(hair_colour, 0, 1), long_hair, hair_length)
    )
    plain = 0.0
    skin = Material(np.clip(skin_tone, 0, 1), np.clip(skin_tone * 0.85, 0, 1), "noise", 3.0, plain, 0.05)
    materials = (
        skin,
        sample_cloth(rng),
        sample_cloth(rng),
        Material(random_colour(rng) * 0.6, random_colour(rng) * 0.4, "plain", 1.0, plain, 0.05),
        Material(np.clip(hair_colour, 0, 1), np.clip(hair_colour * 0.8, 0, 1), "stripes", 150.0, 1.4, 0.1),
        Material(np.array([0.95, 0.94, 0.92]), np.array([0.75, 0.74, 0.72]), "dots", 40.0, 0.3, 0.05),
        Material(np.array([0.85, 0.92, 0.97]), np.array([1.0, 1.0, 1.0]), "stripes", 4.0, 0.8, 0.02),
        Material(np.array([0.08, 0.06, 0.05]), np.array([0.08, 0.06, 0.05]), "plain", 1.0, plain, 0.0),
    )
    return FigureParams(
        height=float(height),
        start=np.asarray(start, np.float64),
        velocity=np.asarray(velocity, np.float64),
        facing=facing,
        frontal=frontal,
        step_rate=step_rate,
        phase=float(rng.uniform(0, 2 * np.pi)),
        stride=stride,
        arm_swing=float(stride * rng.uniform(0.5, 1.0) if walking else rng.uniform(0.0, 0.1)),
        gesture=gesture,
        lean=float(rng.normal(0.0, 0.05) + (0.06 * facing if walking else 0.0)),
        sway=float(rng.uniform(0.02, 0.12)),
        build=np.array(
            [
                rng.uniform(0.095, 0.125),
                rng.uniform(0.05, 0.07),
                rng.uniform(0.085, 0.105),
                rng.uniform(0.07, 0.09),
                rng.uniform(0.85, 1.2),
            ]
        ),
        head_radius=float(rng.uniform(0.052, 0.062)),
        dress=bool(rng.random() < 0.2),
        long_sleeves=bool(rng.random() < 0.5),
        shorts=bool(rng.random() < 0.2),
        hair=hair,
        long_hair=long_hair and hair is not None,
        hair_length=hair_length,
        veil=bool(rng.random() < veil_prob),
        veil_opacity=float(rng.uniform(0.3, 0.6)),
        glass=bool(rng.random() < glass_prob),
        materials=materials,
        textures=_texture_sheets(materials, value_noise(rng, 128, 8), height),
    )


_MAX_SHEET = 768  # texture sheet side in pixels; larger figures get slightly soft textures


def _texture_sheets(materials: tuple[Material, ...], noise: np.ndarray, height: float) -> np.ndarray:
    size = int(np.clip(np.ceil(2 * SHEET_EXTENT * height), 16, _MAX_SHEET))
    return np.stack([texture_sheet(m, noise, size) for m in materials])


class Capsule(NamedTuple):
    """A tapered capsule: segment ``a -> b`` (x, y), radius ``ra`` at ``a`` to ``rb`` at ``b``."""

    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float

    def field(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return capsule_field(ys, xs, self.a, self.b, self.ra, self.rb)

    def box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` holding the shape."""
        r = max(self.ra, self.rb)
        (ax, ay), (bx, by) = self.a.tolist(), self.b.tolist()
        return min(ax, bx) - r, min(ay, by) - r, max(ax, bx) + r, max(ay, by) + r

    def moved(self, other: Capsule) -> float:
        """How far (pixels, largest coordinate change) the shape moved to become ``other``."""
        return float(max(np.abs(self.a - other.a).max(), np.abs(self.b - other.b).max()))


class Ellipse(NamedTuple):
    """An ellipse: ``centre`` (x, y), semi-axes ``rx``, ``ry``, rotated by ``angle`` radians."""

    centre: np.ndarray
    rx: float
    ry: float
    angle: float

    def field(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ellipse_field(ys, xs, self.centre, self.rx, self.ry, self.angle)

    def box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` holding the shape."""
        r = max(self.rx, self.ry)
        x, y = self.centre.tolist()
        return x - r, y - r, x + r, y + r

    def moved(self, other: Ellipse) -> float:
        """How far (pixels, largest coordinate change) the shape moved to become ``other``."""
        return float(np.abs(self.centre - other.centre).max())


class Part(NamedTuple):
    """One body part: a shape, its material, an opacity, and how it is drawn.

    Attributes:
        ring: if positive, only a band this many pixels wide inside the outline is drawn (a rim).
        shade: brightness factor (parts on the far side are darker).
        blur: whether the part is motion blurred.
    """

    shape: Capsule | Ellipse
    material: int
    opacity: float = 1.0
    ring: float = 0.0
    shade: float = 1.0
    blur: bool = True


class Pose(NamedTuple):
    """A figure's skeleton at one instant, in pixels; ``parts`` back to front."""

    pelvis: np.ndarray
    head: np.ndarray
    head_radii: tuple[float, float]
    head_angle: float
    parts: list[Part]


def _limb_vector(angle: float, facing: float) -> np.ndarray:
    return np.array([facing * np.sin(angle), np.cos(angle)])


def pose_at(fig: FigureParams, t: float) -> Pose:
    """The figure's skeleton and parts at time ``t`` (frames, fractional for motion blur)."""
    h = fig.height
    phi = fig.step_rate * t + fig.phase
    shoulder_half, hip_half, chest_r, waist_r, thick = fig.build
    width_factor = 0.3 + 0.7 * fig.frontal  # shoulders and hips seen side-on come together
    depth_factor = 0.6 + 0.4 * fig.frontal  # a torso seen side-on is narrower but not flat
    pelvis = fig.start + fig.velocity * t + np.array([0.0, -0.012 * h * fig.stride / 0.4 * abs(np.cos(phi))])
    lean = fig.lean + 0.04 * np.sin(0.07 * t + fig.phase)
    up = np.array([np.sin(lean), -np.cos(lean)])
    side = np.array([np.cos(lean), np.sin(lean)])
    neck = pelvis + up * 0.29 * h
    shoulder_centre = neck - up * 0.03 * h
    tilt = fig.sway * np.sin(0.09 * t + 2 * fig.phase)
    head_angle = lean + tilt
    head = neck + np.array([np.sin(head_angle), -np.cos(head_angle)]) * 0.085 * h
    rx, ry = fig.head_radius * h * (0.85 + 0.15 * fig.frontal), fig.head_radius * h * 1.22
    f = fig.facing
    materials_arm = (TOP, TOP if fig.long_sleeves else SKIN)
    parts: list[Part] = []

    def arm(sign: float, swing_sign: float, shade: float) -> list[Part]:
        shoulder = shoulder_centre + side * sign * shoulder_half * width_factor * h
        amp, rate, phase = fig.gesture[0 if sign < 0 else 1]
        raise_angle = amp * (0.5 - 0.5 * np.cos(rate * t + phase))
        outward = sign * f if fig.frontal > 0.5 else 1.0
        upper = swing_sign * fig.arm_swing * np.sin(phi) + outward * raise_angle
        elbow = shoulder + _limb_vector(upper, f) * 0.165 * h
        bend = 0.15 + 0.35 * max(0.0, np.sin(phi) * swing_sign) + 0.6 * raise_angle / 2.4
        fore = upper + outward * bend
        wrist = elbow + _limb_vector(fore, f) * 0.145 * h
        hand = wrist + _limb_vector(fore, f) * 0.03 * h
        r = thick * h
        return [
            Part(Capsule(shoulder, elbow, 0.032 * r, 0.026 * r), materials_arm[0], shade=shade),
            Part(Capsule(elbow, wrist, 0.025 * r, 0.019 * r), materials_arm[1], shade=shade),
            Part(Capsule(wrist, hand, 0.02 * r, 0.022 * r), SKIN, shade=shade),
        ]

    def leg(sign: float, swing_sign: float, shade: float) -> list[Part]:
        hip = pelvis - up * 0.01 * h + side * sign * hip_half * width_factor * h
        thigh = swing_sign * fig.stride * np.sin(phi) + sign * 0.04 * fig.frontal
        knee = hip + _limb_vector(thigh, f) * 0.245 * h
        knee_bend = fig.stride * 1.4 * (0.5 + 0.5 * np.sin(phi * swing_sign + 1.2))
        ankle = knee + _limb_vector(thigh - knee_bend, f) * 0.235 * h
        toe = ankle + np.array([f * 0.06 * h * (1 - 0.7 * fig.frontal), 0.012 * h])
        r = thick * h
        return [
            Part(Capsule(hip, knee, 0.05 * r, 0.039 * r), BOTTOM, shade=shade),
            Part(Capsule(knee, ankle, 0.037 * r, 0.027 * r), SKIN if fig.shorts else BOTTOM, shade=shade),
            Part(Capsule(ankle, toe, 0.022 * r, 0.02 * r), SHOES, shade=shade),
        ]

    if fig.long_hair:
        down = head - up * fig.hair_length * 0.75 * h
        parts.append(Part(Capsule(head - up * 0.2 * ry, down, rx * 1.1, rx * 1.3), HAIR, blur=False))
    parts += arm(-1.0, 1.0, 0.8)
    parts += leg(-1.0, 1.0, 0.82)
    parts += leg(1.0, -1.0, 1.0)
    parts.append(
        Part(Capsule(pelvis, shoulder_centre, waist_r * h * depth_factor, chest_r * h * depth_factor), TOP)
    )
    shoulders = [shoulder_centre + side * s * shoulder_half * width_factor * h for s in (-1.0, 1.0)]
    parts.append(Part(Capsule(shoulders[0], shoulders[1], 0.04 * h, 0.04 * h), TOP))
    hips = [pelvis - up * 0.01 * h + side * s * hip_half * width_factor * h for s in (-1.0, 1.0)]
    hip_radius = 0.95 * waist_r * h * depth_factor
    parts.append(Part(Capsule(hips[0], hips[1], hip_radius, hip_radius), BOTTOM))
    if fig.dress:
        hem = pelvis - up * 0.27 * h
        waist = waist_r * h * depth_factor
        parts.append(Part(Capsule(pelvis + up * 0.05 * h, hem, waist, 0.14 * h * depth_factor), TOP))
    parts.append(Part(Capsule(neck - up * 0.02 * h, head, 0.024 * h, 0.024 * h), SKIN))
    parts.append(Part(Ellipse(head, rx, ry, head_angle), SKIN))
    if fig.frontal > 0.55:
        rot = np.array([[np.cos(head_angle), -np.sin(head_angle)], [np.sin(head_angle), np.cos(head_angle)]])
        for s in (-1.0, 1.0):
            eye = head + rot @ np.array([s * 0.38 * rx, 0.08 * ry])
            parts.append(Part(Ellipse(eye, 0.11 * rx, 0.08 * ry, head_angle), EYES, blur=False))
    if fig.hair is not None:
        cap_centre = head + np.array([np.sin(head_angle), -np.cos(head_angle)]) * 0.5 * ry
        parts.append(Part(Ellipse(cap_centre, rx * 1.07, ry * 0.58, head_angle), HAIR, blur=False))
    parts += arm(1.0, -1.0, 1.0)
    if fig.glass:
        hand = parts[-1].shape.b
        body = Capsule(hand - up * 0.005 * h, hand + up * 0.075 * h, 0.026 * h, 0.031 * h)
        parts.append(Part(body, GLASS, opacity=0.22))
        parts.append(Part(body, GLASS, opacity=0.8, ring=1.5))
    return Pose(pelvis, head, (rx, ry), head_angle, parts)


def _veil(fig: FigureParams, pose: Pose) -> Part:
    h = fig.height
    up = np.array([np.sin(pose.head_angle), -np.cos(pose.head_angle)])
    top = pose.head + up * 0.7 * pose.head_radii[1]
    bottom = pose.head - up * 0.4 * h + np.array([-fig.facing * 0.06 * h, 0.0])
    return Part(
        Capsule(top, bottom, pose.head_radii[0] * 1.25, 0.17 * h), VEIL, opacity=fig.veil_opacity, blur=False
    )


def render_figure(
    fig: FigureParams, t: float, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, Window]:
    """Render the figure at frame ``t`` inside a ``height x width`` frame.

    Returns:
        ``alpha (h, w)`` and ``premultiplied (h, w, 3)`` colour times alpha (float32 in [0, 1])
        over ``window``, the part of the frame the figure can touch (empty if it is off screen).
    """
    pose = pose_at(fig, t)
    shifted: dict[float, Pose] = {0.0: pose}  # shutter offset -> parts, computed on demand
    veil = _veil(fig, pose)
    parts = [*pose.parts, veil] if fig.veil else pose.parts
    hair_points = None
    box = union_box([p.shape.box() for p in parts])
    if fig.hair is not None:
        early, late = (_pose(fig, shifted, o, t) for o in (_SHUTTER_OFFSETS[0], _SHUTTER_OFFSETS[-1]))
        head_velocity = (late.head[0] - early.head[0]) / SHUTTER
        sway = float(np.clip(0.35 * head_velocity / (0.015 * fig.height), -0.8, 0.8))
        sway += 0.08 * np.sin(0.15 * t + fig.phase)
        hair_points = strand_points(fig.hair, pose.head, pose.head_radii, pose.head_angle, fig.height, sway)
        lo, hi = hair_points[0].min(axis=0).tolist(), hair_points[0].max(axis=0).tolist()
        box = union_box([box, (lo[0], lo[1], hi[0], hi[1])])
    # the margin holds what motion blur smears beyond the pose at time t
    window = box_window(box, 0.08 * fig.height + 2, height, width)
    alpha = np.zeros((max(window.y1 - window.y0, 0), max(window.x1 - window.x0, 0)), np.float32)
    premultiplied = np.zeros((*alpha.shape, 3), np.float32)
    if window.empty:
        return alpha, premultiplied, window
    for index, part in enumerate(pose.parts):
        _draw_part(fig, pose, part, _blur_samples(fig, shifted, part, t, index), window, alpha, premultiplied)
    if hair_points is not None:
        over(alpha, premultiplied, *render_hair(fig.hair, *hair_points, window))
    if fig.veil:
        _draw_part(fig, pose, veil, [veil], window, alpha, premultiplied)
    return alpha, premultiplied, window


def _blur_samples(
    fig: FigureParams, shifted: dict[float, Pose], part: Part, t: float, index: int
) -> list[Part]:
    """The part at several instants of the exposure, as many as its motion needs (itself if still)."""
    if not part.blur:
        return [part]
    first = _pose(fig, shifted, _SHUTTER_OFFSETS[0], t).parts[index].shape
    moved = first.moved(_pose(fig, shifted, _SHUTTER_OFFSETS[-1], t).parts[index].shape)
    if moved <= _BLUR_STEP:
        return [part]
    offsets = _SHUTTER_OFFSETS[::2] if moved <= 3 * _BLUR_STEP else _SHUTTER_OFFSETS
    return [_pose(fig, shifted, o, t).parts[index] for o in offsets]


def _draw_part(
    fig: FigureParams,
    pose: Pose,
    part: Part,
    samples: list[Part],
    window: Window,
    alpha: np.ndarray,
    premultiplied: np.ndarray,
) -> None:
    """Composite one part (its coverage averaged over ``samples``) over the figure, in place."""
    sub = box_window(union_box([s.shape.box() for s in samples]), 2, window.y1, window.x1).intersect(window)
    if sub.empty:
        return
    ys, xs = sub.grid()
    distance, radius = part.shape.field(ys, xs)
    cover = np.zeros((sub.y1 - sub.y0, sub.x1 - sub.x0), np.float32)
    for sample in samples:
        sample_distance = distance if sample is part else sample.shape.field(ys, xs)[0]
        if sample.ring > 0:
            sample_distance = np.abs(sample_distance + sample.ring / 2) - sample.ring / 2
        cover += coverage(sample_distance)
    cover *= part.opacity / len(samples)
    # darker towards the silhouette, as a lit cylinder
    shade = part.shade * (0.62 + 0.38 * np.sqrt(np.clip(-distance / np.maximum(radius, 1.0), 0.0, 1.0)))
    u, v = (xs - pose.pelvis[0]) / fig.height, (ys - pose.pelvis[1]) / fig.height
    colour = look_up(fig.textures[part.material], u, v)
    colour *= shade[..., None]
    region = (slice(sub.y0 - window.y0, sub.y1 - window.y0), slice(sub.x0 - window.x0, sub.x1 - window.x0))
    over(alpha[region], premultiplied[region], cover, colour)


def _pose(fig: FigureParams, cache: dict[float, Pose], offset: float, t: float) -> Pose:
    if offset not in cache:
        cache[offset] = pose_at(fig, t + offset)
    return cache[offset]
