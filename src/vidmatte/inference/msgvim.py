"""Chunked MSG-VIM inference: a video plus one mask sequence per instance -> one alpha sequence per instance.

The video is split into chunks of ``t`` consecutive frames (default 10, the paper's setting; the last,
shorter chunk is processed too). Within a chunk the instances are batched together (``instance_batch``
at a time) and each gets its own temporal state, which is reset at every chunk as in the paper or
carried over (``carry_state``). Guidance comes as PNG folders (VIM50: ``tg_masks/<clip>/<instance>/
<frame>.png``, binarised at >= 128) or as YouTube-VIS tracks; the reference mask of an instance is the
union of the other instances' masks unless reference folders (``re_masks``) are given.

Outputs: ``<out>/<clip>/<instance>/<frame>.png``. With ``normalise`` the instances' alphas are scaled
where they sum to more than 1 and truncated to 8 bits, so that the written values never sum past 255.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vidmatte.errors import VidmatteError
from vidmatte.io.frames import list_frames, read_rgb, select_folders, to_u8, write_image
from vidmatte.io.masks import Track, check_mask_size, read_mask, read_ytvis_json
from vidmatte.models.msgvim.model import SIZE_MULTIPLE, MsgVim
from vidmatte.models.msgvim.temporal_guidance import TemporalState

CHUNK_SIZE = 10  # frames per chunk (paper, table 9)
MARGIN = 32  # reflect padding the reference adds around every frame before the network
# Peak memory of msgvim-small per instance, frame and (padded) pixel in one forward pass on a CPU (measured:
# 10.6 GB for 20 instances of 10 frames at 360x264), and what one pass may take: 20 people at 768x576 would
# otherwise ask for tens of GB at once
BYTES_PER_INSTANCE_PIXEL = 560
CPU_BATCH_BYTES = 3 * 2**30
FRAMES_FOLDER = "com"  # VIM50: <clip>/com/<frame>.png


class InstanceGuidance(Protocol):
    """Per-instance guidance masks of one clip."""

    names: list[str]

    def masks(self, frame: int, stem: str, size: tuple[int, int]) -> np.ndarray:
        """``(N, H, W)`` bool masks of every instance at frame index ``frame`` (file stem ``stem``)."""
        ...

    def check_size(self, size: tuple[int, int]) -> None:
        """Refuse masks that do not fit frames of ``size`` ``(H, W)``, before any frame is matted."""
        ...


class PngGuidance:
    """Guidance from ``<root>/<instance>/<frame>.png`` (VIM50's ``tg_masks/<clip>`` or ``re_masks/<clip>``).

    Frames are paired with the video's by file name without extension; a frame missing for an instance
    is an empty mask (the VIM50 protocol), a mask file with no video frame of its name is refused.

    Args:
        root: the clip's guidance folder, one sub-folder per instance.
        stems: the video's frame names without extension.
        names: instance folders to read, in this order (default: all, sorted; there may be none:
            a clip where the segmenter found nobody).
    """

    def __init__(
        self, root: str | os.PathLike, stems: Sequence[str], names: Sequence[str] | None = None
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise VidmatteError(f"{root}: no such guidance folder")
        self.names = (
            list(names) if names is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
        )
        known = set(stems)
        self._files: list[dict[str, Path]] = []
        for name in self.names:
            folder = root / name
            files = {p.stem: p for p in list_frames(folder)} if folder.is_dir() else {}
            stray = sorted(set(files) - known)
            if stray:
                raise VidmatteError(
                    f"{files[stray[0]]}: no video frame named {stray[0]} ({len(stray)} such guidance frames; "
                    f"the video has {len(stems)} frames)"
                )
            self._files.append(files)

    def masks(self, frame: int, stem: str, size: tuple[int, int]) -> np.ndarray:
        """``(N, H, W)`` bool; empty where an instance has no mask file for this frame."""
        masks = np.zeros((len(self.names), *size), dtype=bool)
        for index, files in enumerate(self._files):
            if stem in files:
                masks[index] = self._read(files[stem], size)
        return masks

    def check_size(self, size: tuple[int, int]) -> None:
        """Read each instance's first mask file; every later one is checked when it is read."""
        for files in self._files:
            if files:
                self._read(next(iter(files.values())), size)

    @staticmethod
    def _read(path: Path, size: tuple[int, int]) -> np.ndarray:
        mask = read_mask(path)
        check_mask_size(mask.shape, size, str(path))
        return mask


class TrackGuidance:
    """Guidance from YouTube-VIS tracks; each instance is named by its position among them (``"003"``).

    Args:
        tracks: the tracks of one video.
        frame_count: the video's number of frames; a longer track is refused, a shorter one is empty
            past its end.
        source: a name for messages (the JSON file).
    """

    def __init__(self, tracks: Sequence[Track], frame_count: int, source: str = "tracks") -> None:
        for index, track in enumerate(tracks):
            if len(track.segmentations) > frame_count:
                raise VidmatteError(
                    f"{source}: track {index} has {len(track.segmentations)} frames, the video {frame_count}"
                )
        self.names = [f"{index:03d}" for index in range(len(tracks))]
        self._tracks = list(tracks)
        self._source = source

    def masks(self, frame: int, stem: str, size: tuple[int, int]) -> np.ndarray:
        """``(N, H, W)`` bool; empty where a track has no segmentation."""
        masks = np.zeros((len(self._tracks), *size), dtype=bool)
        for index, track in enumerate(self._tracks):
            masks[index] = track.mask(frame, size, f"{self._source} track {index}")
        return masks

    def check_size(self, size: tuple[int, int]) -> None:
        """Compare every segmentation's RLE size with ``size`` (nothing is decoded)."""
        for index, track in enumerate(self._tracks):
            track.check_size(size, f"{self._source} track {index}")


def union_of_others(masks: np.ndarray) -> np.ndarray:
    """Reference masks: for each instance the union of all the other instances' masks.

    Args:
        masks: ``(N, ...)`` bool.

    Returns:
        ``(N, ...)`` bool.

    >>> union_of_others(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]], bool)).astype(int).tolist()
    [[0, 1, 1], [1, 1, 1], [1, 1, 0]]
    """
    counts = masks.sum(axis=0, dtype=np.int32)
    return (counts - masks) > 0


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


ChunkMatter = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(rgb (t, H, W, 3) float32, targets (N, t, H, W) bool, references (N, t, H, W) bool) -> (N, t, H, W)
float32 alphas in [0, 1]``."""


class GuidanceAsAlpha:
    """The baseline that scores the guidance masks themselves as alphas (a :data:`ChunkMatter`)."""

    def __call__(self, rgb: np.ndarray, targets: np.ndarray, references: np.ndarray) -> np.ndarray:
        """``(N, t, H, W)`` bool targets -> the same as float32 0/1 alphas."""
        return targets.astype(np.float32)


class ChunkPrediction(Protocol):
    """What a session reads of a network's output: ``(B, T, 2, H, W)`` alphas and the next state."""

    alpha: torch.Tensor
    state: TemporalState


class MsgVimRunner(Protocol):
    """What a session runs instead of :class:`MsgVim`: an exported graph with the same call."""

    def __call__(
        self,
        rgb: torch.Tensor,
        target_mask: torch.Tensor,
        reference_mask: torch.Tensor,
        state: TemporalState | None = None,
    ) -> ChunkPrediction:
        """As :meth:`MsgVim.forward` on clips."""
        ...


def _pad(x: torch.Tensor, margin: int) -> torch.Tensor:
    """Pad ``(..., H, W)`` by ``margin`` on every side and then to multiples of 32 at the bottom and right.

    Reflection as the reference does; replication where the frame is too small to reflect.
    """
    height, width = x.shape[-2:]
    bottom = margin + (-(height + 2 * margin) % SIZE_MULTIPLE)
    right = margin + (-(width + 2 * margin) % SIZE_MULTIPLE)
    mode = "reflect" if max(margin, bottom) < height and max(margin, right) < width else "replicate"
    flat = x.reshape(-1, 1, height, width)
    padded = F.pad(flat, (margin, right, margin, bottom), mode=mode)
    return padded.reshape(*x.shape[:-2], *padded.shape[-2:])


@dataclass
class MsgVimSession:
    """Runs an MSG-VIM network on the chunks of one clip; holds the instances' temporal states.

    Use a new session per clip. Calling it is a :data:`ChunkMatter`. The session runs the network as it
    receives it and keeps its settings; what it learns on the way (the temporal states, a batch that
    fits the accelerator's memory) is its own state.

    Args:
        model: the network in evaluation mode, prepared beforehand
            (:func:`vidmatte.inference.torch_engine.prepare_network`: channels-last weights run about
            1.5x faster on a CPU), or an exported graph called the same way
            (:class:`vidmatte.inference.onnx_backend.OnnxMsgVim`, CPU).
        carry_state: pass each instance's temporal state from one chunk to the next (the paper
            resets it at every chunk).
        instance_batch: instances per forward pass (``None``: on an accelerator all of a chunk's
            instances at once, halved whenever it runs out of memory, see :attr:`fitting_batch`; on a
            CPU as many as fit in :data:`CPU_BATCH_BYTES`, since a CPU process that runs out of memory
            is killed outright).
        margin: padding around each frame, as the reference.
        device: where the network runs.

    Attributes:
        fitting_batch: the instances per forward pass that fit after the accelerator ran out of memory
            (``None`` until it does); the rest of the clip keeps to it.
    """

    model: MsgVim | MsgVimRunner
    carry_state: bool = False
    instance_batch: int | None = None
    margin: int = MARGIN
    device: torch.device | str = "cpu"

    fitting_batch: int | None = field(default=None, init=False)
    _states: dict[int, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.model, MsgVim) and self.model.training:
            raise ValueError("MsgVimSession runs a model in evaluation mode: call model.eval() first")

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, targets: np.ndarray, references: np.ndarray) -> np.ndarray:
        """Matte ``N`` instances over ``t`` frames: see :data:`ChunkMatter`.

        When a batch of instances runs out of accelerator memory, the batch is halved (and stays so
        for the rest of the clip); a single instance that does not fit is an error.
        """
        count, time, height, width = targets.shape
        frames = _pad(torch.from_numpy(rgb).permute(0, 3, 1, 2), self.margin).to(self.device)
        alphas = np.zeros((count, time, height, width), np.float32)
        start = 0
        while start < count:
            step = self.fitting_batch or self.instance_batch or self._default_batch(count, frames.shape)
            group = list(range(start, min(start + step, count)))
            try:
                alphas[group] = self._matte_group(frames, targets[group], references[group], group)
            except torch.OutOfMemoryError:
                if len(group) == 1:
                    raise VidmatteError(
                        f"out of memory on {self.device} for one instance of {time} frames at "
                        f"{width}x{height}; use fewer frames per chunk"
                    ) from None
                self.fitting_batch = len(group) // 2
                continue
            start += len(group)
        return alphas

    def _default_batch(self, count: int, shape: torch.Size) -> int:
        """Instances per forward pass when none is set: all on an accelerator, a memory budget's on a CPU."""
        if torch.device(self.device).type != "cpu":
            return count
        time, _, height, width = shape
        return max(1, min(count, CPU_BATCH_BYTES // (BYTES_PER_INSTANCE_PIXEL * time * height * width)))

    def _matte_group(
        self, frames: torch.Tensor, targets: np.ndarray, references: np.ndarray, group: list[int]
    ) -> np.ndarray:
        """Padded ``(t, 3, H', W')`` frames and ``(b, t, H, W)`` masks of ``group`` -> ``(b, t, H, W)``."""
        height, width = targets.shape[-2:]
        masks = _pad(torch.from_numpy(np.stack([targets, references], axis=2)).float(), self.margin)
        masks = masks.to(self.device)
        state = None
        if self.carry_state and group[0] in self._states:
            state = TemporalState(torch.cat([self._states[i] for i in group]))
        out = self.model(frames.expand(len(group), *frames.shape), masks[:, :, :1], masks[:, :, 1:], state)
        if self.carry_state:
            self._states.update(zip(group, out.state.hidden.split(1), strict=True))
        crop = out.alpha[:, :, 0, self.margin : self.margin + height, self.margin : self.margin + width]
        return crop.float().cpu().numpy()


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
        matter: what turns a chunk into alphas (an :class:`MsgVimSession`, or :class:`GuidanceAsAlpha`).
        chunk_size: frames per chunk; the last chunk may be shorter.
        reference_guidance: the instances' reference masks (same instance names); default: the union
            of the other instances' target masks.
        normalise: scale the instances' alphas so that they never sum past 1 (see :func:`normalised_u8`).

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
        targets = np.stack([guidance.masks(start + i, p.stem, size) for i, p in enumerate(paths)], axis=1)
        if reference_guidance is None:
            references = union_of_others(targets)
        else:
            references = np.stack(
                [reference_guidance.masks(start + i, p.stem, size) for i, p in enumerate(paths)], axis=1
            )
        alphas = matter(rgb, targets, references)
        written = normalised_u8(alphas) if normalise else to_u8(alphas)
        for index, name in enumerate(guidance.names):
            for t, path in enumerate(paths):
                write_image(out_dir / name / f"{path.stem}.png", written[index, t])
    return guidance.names


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


def ytvis_video_ids(
    path: str | os.PathLike, tracks: Sequence[Track], clips: Sequence[str], video_id: int | None = None
) -> dict[str, int]:
    """Which video of a YouTube-VIS result file guides which clip.

    One clip takes ``video_id`` (or the file's only video). Several clips are paired with the file's
    video ids in ascending order (YouTube-VIS numbers the videos of its annotation file from 1, in
    order), which needs as many videos as clips.

    Args:
        path: the file, for messages.
        tracks: its tracks.
        clips: every clip name of the data set, sorted.
        video_id: the video for a single clip.

    Raises:
        VidmatteError: the pairing is ambiguous.
    """
    videos = sorted({t.video_id for t in tracks})
    if video_id is not None:
        if len(clips) != 1:
            raise VidmatteError(f"{path}: a video id selects the tracks of one clip, not {len(clips)}")
        return {clips[0]: video_id}
    if len(videos) == len(clips) or (len(clips) == 1 and len(videos) == 1):
        return dict(zip(clips, videos, strict=True))
    if len(clips) == 1:
        raise VidmatteError(
            f"{path}: tracks of {len(videos)} videos (video_id {', '.join(map(str, videos))}) for one video; "
            "keep only its tracks in the file (matte-vim can pick them with --video-id)"
        )
    raise VidmatteError(
        f"{path}: tracks of {len(videos)} videos for {len(clips)} clips; give a folder of <clip>.json, or "
        "one clip and its video with --clips CLIP --video-id N"
    )


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
        matter_for_clip: makes a fresh :data:`ChunkMatter` per clip (e.g. a new :class:`MsgVimSession`).
        masks: PNG guidance root, ``<masks>/<clip>/<instance>/<frame>.png``.
        ytvis: YouTube-VIS result JSON (see :func:`ytvis_video_ids` for how its videos pair with the
            clips) or a folder of ``<clip>.json``; instead of ``masks``.
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
    tracks: list[Track] = []
    video_ids: dict[str, int] = {}
    if ytvis is not None and Path(ytvis).is_file():
        tracks = read_ytvis_json(ytvis)
        names = [f.name for f in folders] if video_id is not None else [f.name for f in clip_folders(data)]
        video_ids = ytvis_video_ids(ytvis, tracks, names, video_id)
    written = {}
    for folder in folders:
        frames = list_frames(folder / FRAMES_FOLDER)
        stems = [f.stem for f in frames]
        if masks is not None:
            guidance: InstanceGuidance = PngGuidance(Path(masks) / folder.name, stems)
        elif video_ids:
            clip_tracks = [t for t in tracks if t.video_id == video_ids[folder.name]]
            guidance = TrackGuidance(clip_tracks, len(frames), f"{ytvis} video {video_ids[folder.name]}")
        else:
            json_path = Path(ytvis) / f"{folder.name}.json"
            guidance = TrackGuidance(read_ytvis_json(json_path), len(frames), str(json_path))
        reference = None
        if reference_masks is not None:
            reference = PngGuidance(Path(reference_masks) / folder.name, stems, guidance.names)
        written[folder.name] = matte_clip(
            frames, guidance, Path(out) / folder.name, matter_for_clip(), chunk_size, reference, normalise
        )
    return written
