"""Matte the clips of a VIM50-style folder (``vidmatte matte-vim``): ``<data>/<clip>/com/<frame>.png`` in,
``<out>/<clip>/<instance>/<frame>.png`` out, one clip after another.

Each clip's guidance comes from :class:`~vidmatte.io.guidance.GuidanceSource`: PNG folders (VIM50:
``tg_masks/<clip>/<instance>/<frame>.png``, binarised at >= 128) or YouTube-VIS tracks; the reference
mask of an instance is the union of the other instances' masks unless reference folders (``re_masks``)
are given. With ``normalise`` the instances' alphas are scaled where they sum to more than 1 and
truncated to 8 bits, so that the written values never sum past 255.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vidmatte.errors import VidmatteError
from vidmatte.inference.msgvim import CHUNK_SIZE, ChunkMatter
from vidmatte.io.frames import list_frames, normalised_u8, read_rgb, select_folders, to_u8, write_image
from vidmatte.io.guidance import GuidanceSource, InstanceGuidance, PngGuidance, union_of_others

FRAMES_FOLDER = "com"  # VIM50: <clip>/com/<frame>.png


class GuidanceAsAlpha:
    """The baseline that scores the guidance masks themselves as alphas (a :data:`ChunkMatter`)."""

    def __call__(self, rgb: np.ndarray, targets: np.ndarray, references: np.ndarray) -> np.ndarray:
        """``(N, t, H, W)`` bool targets -> the same as float32 0/1 alphas."""
        return targets.astype(np.float32)


def clip_folders(data: str | os.PathLike) -> list[Path]:
    """The clips of a VIM50-style folder (``<clip>/com/``), or ``[data]`` if it is one clip itself.

    Raises:
        VidmatteError: no clip found.
    """
    data = Path(data)
    if (data / FRAMES_FOLDER).is_dir():
        return [data]
    if not data.is_dir():
        raise VidmatteError(f"{data}: no such folder")
    clips = sorted(c for c in data.iterdir() if (c / FRAMES_FOLDER).is_dir())
    if not clips:
        raise VidmatteError(f"{data}: no clip (expected <clip>/{FRAMES_FOLDER}/<frame>.png)")
    return clips


def matte_clip(
    frames: Sequence[Path],
    guidance: InstanceGuidance,
    out_dir: str | os.PathLike,
    matter: ChunkMatter,
    chunk_size: int = CHUNK_SIZE,
    reference_guidance: InstanceGuidance | None = None,
    normalise: bool = False,
) -> list[str]:
    """Matte every instance of one clip and write ``<out_dir>/<instance>/<frame>.png``.

    Args:
        frames: the clip's frame files, in order.
        guidance: the instances' target masks.
        out_dir: the clip's output folder.
        matter: what turns a chunk into alphas (a :class:`~vidmatte.inference.msgvim.MsgVimSession`, or
            :class:`GuidanceAsAlpha`).
        chunk_size: frames per chunk; the last chunk may be shorter.
        reference_guidance: the instances' reference masks (same instance names); default: the union
            of the other instances' target masks.
        normalise: scale the instances' alphas so that they never sum past 1
            (:func:`~vidmatte.io.frames.normalised_u8`).

    Returns:
        The instance names written.

    Raises:
        VidmatteError: a frame or mask that cannot be read or does not fit.
    """
    if reference_guidance is not None and reference_guidance.names != guidance.names:
        raise VidmatteError(
            f"reference masks name instances {reference_guidance.names}, the target masks {guidance.names}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # a clip without instances still gets its (empty) folder
    for start in range(0, len(frames), chunk_size):
        paths = frames[start : start + chunk_size]
        rgb = np.stack([read_rgb(p) for p in paths])
        if len({image.shape for image in rgb}) != 1:
            raise VidmatteError(f"{paths[0].parent}: frames differ in size")
        size = rgb.shape[1:3]
        targets = np.stack([guidance.masks(start + i, size) for i in range(len(paths))], axis=1)
        if reference_guidance is None:
            references = union_of_others(targets)
        else:
            references = np.stack(
                [reference_guidance.masks(start + i, size) for i in range(len(paths))], axis=1
            )
        alphas = matter(rgb, targets, references)
        written = normalised_u8(alphas) if normalise else to_u8(alphas)
        for index, name in enumerate(guidance.names):
            for t, path in enumerate(paths):
                write_image(out_dir / name / f"{path.stem}.png", written[index, t])
    return guidance.names


def matte_videos(
    data: str | os.PathLike,
    out: str | os.PathLike,
    matter_for_clip: Callable[[], ChunkMatter],
    masks: str | os.PathLike | None = None,
    ytvis: str | os.PathLike | None = None,
    reference_masks: str | os.PathLike | None = None,
    video_id: int | None = None,
    clips: Sequence[str] | None = None,
    chunk_size: int = CHUNK_SIZE,
    normalise: bool = False,
) -> dict[str, list[str]]:
    """Matte every clip of a VIM50-style folder (or one clip) into ``<out>/<clip>/<instance>/<frame>.png``.

    Args:
        data: ``<data>/<clip>/com/<frame>.png``, or one clip folder holding ``com/``.
        out: output root.
        matter_for_clip: makes a fresh :data:`ChunkMatter` per clip (e.g. a new
            :class:`~vidmatte.inference.msgvim.MsgVimSession`).
        masks: PNG guidance root, ``<masks>/<clip>/<instance>/<frame>.png``.
        ytvis: YouTube-VIS result JSON (see :func:`~vidmatte.io.guidance.ytvis_video_ids` for how its
            videos pair with the clips) or a folder of ``<clip>.json``; instead of ``masks``.
        reference_masks: PNG reference root like ``masks`` (default: union of the other instances).
        video_id: the video of the ``ytvis`` file that guides the (single) clip.
        clips: clip names to process (default: all).
        chunk_size: frames per chunk.
        normalise: keep the instances' alphas from summing past 1.

    Returns:
        Per clip, the instance names written.
    """
    if (masks is None) == (ytvis is None):
        raise VidmatteError("give guidance either as PNG masks or as YouTube-VIS JSON, not both or neither")
    folders = select_folders(clip_folders(data), clips, data)
    shared = None  # one YouTube-VIS file for every clip, read once
    if ytvis is not None and Path(ytvis).is_file():
        names = [f.name for f in folders] if video_id is not None else [f.name for f in clip_folders(data)]
        shared = GuidanceSource(ytvis, names, video_id)
    written = {}
    for folder in folders:
        frames = list_frames(folder / FRAMES_FOLDER)
        stems = [f.stem for f in frames]
        if shared is not None:
            source = shared
        elif masks is not None:
            source = GuidanceSource(Path(masks) / folder.name)
        else:
            source = GuidanceSource(Path(ytvis) / f"{folder.name}.json", video_id=video_id)
        guidance = source.clip(folder.name, stems, len(frames))
        reference = None
        if reference_masks is not None:
            reference = PngGuidance(Path(reference_masks) / folder.name, stems, guidance.names)
        written[folder.name] = matte_clip(
            frames, guidance, Path(out) / folder.name, matter_for_clip(), chunk_size, reference, normalise
        )
    return written
