"""Rebuild the VM benchmark (the Robust Video Matting test set) from VideoMatte240K.

The published construction, which this reproduces step for step:

- Python's ``random`` seeded with 10; VideoMatte240K test clips ``<videomatte>/fgr/<clip>/`` and
  ``<videomatte>/pha/<clip>/`` (JPEG folders) taken in sorted order, frames sorted by name.
- Backgrounds shuffled once with that generator: for ``videomatte_static`` every image of the
  background folder; for ``videomatte_motion`` a hand-picked list of 45 background videos.
- Sample ``i`` takes clip ``i mod C``, background ``i`` (images) or ``i mod 45`` (videos), and
  100 consecutive frames from ``random.choice(range(len(frames) - 100))``.
- Foreground and alpha resized with Pillow's bilinear filter, and mirrored left-right when
  ``(i // C)`` is odd (every other pass over the clips); background frames (the first 100 of a
  video, or the one image) resized bilinearly to the same size.
- ``com = uint8(fgr * a + bgr * (1 - a))`` with ``a = pha / 255``: truncation, not rounding.

Decision: the published script lists the background image folder with ``os.listdir``, whose
order depends on the file system; we sort it, so the result is the same on every machine (and
equal to the published set wherever ``os.listdir`` happened to return sorted names).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from vidmatte.data.benchmarks import frame_name
from vidmatte.data.sources import open_source
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import IMAGE_EXTENSIONS, list_frames
from vidmatte.io.reader import VIDEO_EXTENSIONS

SEED = 10
FRAMES = 100
SAMPLES = 25
# The background videos hand-picked for videomatte_motion in the published script (file names in
# the BackgroundVideos test folder), in its order: the shuffle depends on it.
MOTION_BACKGROUNDS = tuple(
    f"{n:04d}.mp4"
    for n in (
        0, 7, 8, 10, 13, 15, 16, 18, 21, 29, 33, 35, 39, 50, 52, 55, 60, 63, 87, 86, 90, 101, 110, 117,
        120, 122, 123, 125, 128, 131, 172, 176, 181, 187, 193, 198, 220, 221, 224, 229, 233, 238, 241,
        245, 246,
    )
)  # fmt: skip


def list_videomatte_clips(root: str | os.PathLike) -> list[tuple[str, list[Path], list[Path]]]:
    """VideoMatte240K JPEG clips: ``(name, fgr frames, pha frames)`` in sorted order.

    Raises:
        VidmatteError: missing ``fgr``/``pha`` folders, a clip without alpha, or a clip whose
            foreground and alpha differ in length.
    """
    root = Path(root)
    for folder in ("fgr", "pha"):
        if not (root / folder).is_dir():
            raise VidmatteError(
                f"{root}: no '{folder}' folder (expected <dir>/fgr/<clip>/ and <dir>/pha/<clip>/)"
            )
    clips = []
    for fgr in sorted(p for p in (root / "fgr").iterdir() if p.is_dir()):
        pha = root / "pha" / fgr.name
        if not pha.is_dir():
            raise VidmatteError(f"{pha}: no alpha folder for the foreground clip {fgr}")
        fgr_frames, pha_frames = list_frames(fgr), list_frames(pha)
        if len(fgr_frames) != len(pha_frames):
            raise VidmatteError(
                f"{pha}: {len(pha_frames)} alpha frames for {len(fgr_frames)} foreground frames"
            )
        clips.append((fgr.name, fgr_frames, pha_frames))
    if not clips:
        raise VidmatteError(f"{root / 'fgr'}: no clip folder")
    return clips


def build_vm_subset(
    videomatte: str | os.PathLike,
    backgrounds: str | os.PathLike,
    out: str | os.PathLike,
    size: tuple[int, int],
    motion: bool,
    *,
    samples: int = SAMPLES,
    frames: int = FRAMES,
    seed: int = SEED,
    published_backgrounds: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Build ``videomatte_static`` (background images) or ``videomatte_motion`` (background videos).

    Args:
        videomatte: the VideoMatte240K test folder with ``fgr/`` and ``pha/``.
        backgrounds: a folder of images (static) or of videos (motion).
        out: where ``videomatte_{static,motion}/<sample>/{com,pha,fgr,bgr}/`` is written.
        size: output ``(width, height)``, e.g. ``(512, 288)``.
        motion: build the motion subset (videos) rather than the static one (images).
        published_backgrounds: for motion, use the published list of 45 videos (every one must
            be present); otherwise every video in the folder, sorted.
        progress: called with each sample's index once it is written.

    Returns:
        The subset's folder.
    """
    generator = random.Random(seed)
    clips = list_videomatte_clips(videomatte)
    names = _background_names(Path(backgrounds), motion, published_backgrounds)
    generator.shuffle(names)
    if not motion and len(names) < samples:
        raise VidmatteError(f"{backgrounds}: {len(names)} background images for {samples} samples")
    subset = Path(out) / ("videomatte_motion" if motion else "videomatte_static")
    for i in range(samples):
        name, fgr_paths, pha_paths = clips[i % len(clips)]
        if len(fgr_paths) <= frames:
            raise VidmatteError(
                f"{Path(videomatte) / 'fgr' / name}: {len(fgr_paths)} frames, need more than {frames}"
            )
        background = open_source(Path(backgrounds) / names[i % len(names) if motion else i])
        start = generator.choice(range(len(fgr_paths) - frames))
        flip = (i // len(clips)) % 2 == 1
        bgr_frames = background.read(0, frames) if motion else background.read(0, 1)
        folder = subset / f"{i:04d}"
        for t in range(frames):
            fgr = _open(fgr_paths[start + t], "RGB").resize(size, Image.BILINEAR)
            pha = _open(pha_paths[start + t], "L").resize(size, Image.BILINEAR)
            if flip:
                fgr, pha = fgr.transpose(Image.FLIP_LEFT_RIGHT), pha.transpose(Image.FLIP_LEFT_RIGHT)
            bgr = Image.fromarray(bgr_frames[t if motion else 0]).resize(size, Image.BILINEAR)
            a = np.asarray(pha).astype(np.float64)[:, :, None] / 255
            com = (np.asarray(fgr) * a + np.asarray(bgr) * (1 - a)).astype(np.uint8)  # truncates
            for kind, image in (("fgr", fgr), ("pha", pha), ("bgr", bgr), ("com", Image.fromarray(com))):
                (folder / kind).mkdir(parents=True, exist_ok=True)
                image.save(folder / kind / frame_name(t))
        if progress is not None:
            progress(i)
    return subset


def _background_names(folder: Path, motion: bool, published: bool) -> list[str]:
    if not folder.is_dir():
        raise VidmatteError(f"{folder}: no such folder")
    extensions = VIDEO_EXTENSIONS if motion else IMAGE_EXTENSIONS
    present = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in extensions)
    if motion and published:
        missing = [n for n in MOTION_BACKGROUNDS if n not in present]
        if missing:
            raise VidmatteError(
                f"{folder / missing[0]}: missing, one of the {len(MOTION_BACKGROUNDS)} published background "
                f"videos ({len(missing)} missing; use every video in the folder instead to build anyway)"
            )
        return list(MOTION_BACKGROUNDS)
    if not present:
        kind = "video" if motion else "image"
        raise VidmatteError(f"{folder}: no background {kind}")
    return present


def _open(path: Path, mode: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except (OSError, ValueError) as error:
        raise VidmatteError(f"{path}: unreadable image ({error})") from None
