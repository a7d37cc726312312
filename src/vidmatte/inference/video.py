"""Matte one video (a file or a folder of images) into alpha, foreground, composite and RGBA outputs.

:func:`matte_video` is the library function behind ``vidmatte matte``. Frames flow through a
pipeline: decoded a few frames ahead in a background thread (:func:`~vidmatte.io.reader.open_frames`),
matted by the model in the calling thread, rendered and encoded in background threads
(:class:`~vidmatte.inference.outputs.OutputWriters`), with small bounded queues between the stages,
so memory does not grow with the length of the video:

- AdaM online holds its bounded memory (frame 0 plus the most recent frames);
- AdaM ``bidirectional`` needs each frame twice, forward then backward, so it works on windows of
  ``chunk`` frames (default :data:`BIDIRECTIONAL_WINDOW`), holding one window of frames and mattes at
  a time (7 bytes per pixel per frame: about 0.7 GB for 50 frames of 1920x1080); the forward pass runs
  on through the windows with one memory, and each window's reverse pass starts from it;
- MSG-VIM holds one chunk of ``chunk`` frames (default 10) and carries each instance's temporal state
  from chunk to chunk.

Frame count and timestamps are those of the input (variable frame rates included), the input's audio
is copied into video outputs, and every output is written under a temporary name and renamed only
when complete.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from vidmatte.errors import VidmatteError
from vidmatte.inference.backgrounds import open_background
from vidmatte.inference.engine import Engine, EngineSettings, FrameMatter, WindowMatter, load_engine
from vidmatte.inference.msgvim import CHUNK_SIZE, ChunkMatter
from vidmatte.inference.outputs import (
    DEFAULT_OUTPUTS,
    FORMATS,
    OUTPUT_KINDS,
    MattedFrame,
    OutputWriters,
    format_of,
    plan_outputs,
    refuse_inputs_as_outputs,
)
from vidmatte.io.frames import to_u8
from vidmatte.io.guidance import GuidanceSource, TrackGuidance, union_of_others
from vidmatte.io.masks import check_mask_size, read_mask
from vidmatte.io.reader import Frame, VideoInfo, count_frames, open_frames
from vidmatte.models.adam.geometry import MIN_NETWORK_SIDE, min_downsample_ratio
from vidmatte.models.precision import Precision

SEGMENTORS = ("people", "own")  # AdaM's first-frame segmentors
BIDIRECTIONAL_WINDOW = 50  # frames per forward + backward window of bi-directional AdaM


@dataclass(frozen=True)
class MatteResult:
    """What :func:`matte_video` did.

    Attributes:
        input: the video or image folder.
        outputs: every output written (files, or folders of PNGs).
        frames: frames matted.
        seconds: wall time from the first frame to the last output completed.
        instances: MSG-VIM's instance names, in output order (empty for AdaM).
        truncation: why a truncated video ended early (``accept_truncated``), else ``None``.
    """

    input: Path
    outputs: list[Path]
    frames: int
    seconds: float
    instances: list[str]
    truncation: str | None = None

    @property
    def fps(self) -> float:
        """Frames per second, decoding and encoding included."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line: ``"clip.mp4: 240 frames in 12.3 s (19.5 fps) -> out/alpha.mp4, out/composite.mp4"``."""
        instances = f", {len(self.instances)} instances" if self.instances else ""
        outputs = ", ".join(str(p) for p in self.outputs)
        return (
            f"{self.input}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} fps{instances}) "
            f"-> {outputs}"
        )


def matte_video(
    input: str | os.PathLike,
    out: str | os.PathLike,
    *,
    model: str = "adam",
    checkpoint: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
    first_mask: str | os.PathLike | None = None,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
    format: str | None = None,
    background: str | os.PathLike = "green",
    downsample_ratio: float | None = None,
    bidirectional: bool = False,
    chunk: int | None = None,
    device: str = "cpu",
    precision: Precision | Literal["auto"] = "auto",
    backend: str = "torch",
    lossless: bool = False,
    progress: bool | None = None,
    engine: Engine | None = None,
    accept_truncated: bool = False,
    overwrite: bool = False,
    segmentor: str | None = None,
    on_frame: Callable[[MattedFrame], None] | None = None,
) -> MatteResult:
    """Matte a video with AdaM (everyone in one matte) or MSG-VIM (one matte per instance).

    Args:
        input: a video PyAV decodes (mp4, mov, mkv, avi, webm, ...) or a folder of images.
        out: output folder (layout in :mod:`vidmatte.inference.outputs`), or for a single AdaM output a
            video file (``.mp4``, ``.mov``, ``.webm``, ``.mkv``; its suffix gives the format).
        model: ``"adam"`` or ``"msgvim"``.
        checkpoint: weights file or default name; default the shipped ``adam-fast`` / ``msgvim-default``.
        masks: MSG-VIM's guidance: a YouTube-VIS result JSON (tracks of one video), or a folder
            ``<masks>/<instance>/<frame>.png`` (binarised at >= 128) whose frames are named like the
            input folder's frames, or for a video input by frame index (``0.png`` or ``000000.png``,
            from 0); a frame without a mask file is an empty mask. ``None``: the people are tracked
            first with :func:`vidmatte.segmentation.tracks.default_track_builder` (and it says so).
        first_mask: AdaM's first-frame mask (a PNG of the frames' size, >= 128 is foreground);
            default: ``segmentor`` segments the first frame.
        segmentor: AdaM's first-frame segmentor without ``first_mask``: ``"people"`` (default: every
            person that :class:`~vidmatte.segmentation.first_frame.PeopleSegmentor` finds; frames with
            nobody come out empty until someone appears, and after
            :data:`~vidmatte.inference.adam.FIRST_MASK_PATIENCE` of them the model's own head starts,
            with a warning) or ``"own"`` (the model's own mask head).
        outputs: any of :data:`~vidmatte.inference.outputs.OUTPUT_KINDS`.
        format: ``"mp4"`` (H.264), ``"prores"`` (ProRes 4444 ``.mov``), ``"webm"`` (VP9), ``"mkv"``
            (FFV1, lossless) or ``"png"`` (folders of PNGs); default: ``out``'s suffix, else ``"mp4"``.
        background: the composites' background: ``"green"``, ``"#RRGGBB"``, an image, or a video (looped).
        downsample_ratio: AdaM's network resolution relative to the frames, in (0, 1]; ``None``:
            automatic (long side about 512 pixels).
        bidirectional: AdaM's offline forward-and-backward inference (windows of ``chunk`` frames).
        chunk: frames per MSG-VIM chunk (default 10) or per bi-directional AdaM window (default 50).
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; see :mod:`vidmatte.models.precision`),
            or ``"auto"``: bf16 on a CPU that computes it natively, else fp32
            (:func:`~vidmatte.inference.precision.auto_precision`).
        backend: the runtime (one of :data:`vidmatte.inference.engine.BACKENDS`).
        lossless: exact alpha in ``.mp4`` and ``.webm`` outputs too (``mkv`` and ``png`` always are).
        progress: show a progress bar (frames per second, time left); default: if stderr is a terminal.
        engine: an engine already loaded by :func:`~vidmatte.inference.engine.load_engine` (to matte
            many videos with one load); ``checkpoint``, ``device``, ``precision`` and ``backend`` are then
            those it was loaded with.
        accept_truncated: a video that stops decoding early (cut short, corrupt tail) gives outputs of
            its decodable frames and :attr:`MatteResult.truncation` says why; by default it is an error
            and no output is written.
        overwrite: replace outputs that exist already; by default they are refused (before any frame).
        on_frame: called with each matted frame, in order, once it is queued for the outputs (e.g. to
            show progress and a preview); it runs in the model's thread, so it should be quick.

    Returns:
        The outputs written and the time taken.

    Raises:
        VidmatteError: bad input, naming the file (a missing input, masks that do not fit the frames,
            weights of the other model, an option the model does not take, a downsample ratio too small
            for the frames), an output that is an input or exists (without ``overwrite``) or that another
            run is writing; no output is left behind.
    """
    input = Path(input)
    settings = EngineSettings(model, checkpoint, device, precision)
    kinds = _check_options(
        settings, outputs, masks, first_mask, bidirectional, chunk, downsample_ratio, segmentor
    )
    format = _output_format(out, format)
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(open_frames(input, accept_truncated=accept_truncated))
        info = reader.info
        if model == "msgvim" and masks is None:
            masks = _track_people(input, device, Path(stack.enter_context(tempfile.TemporaryDirectory())))
        if downsample_ratio is not None:
            _check_downsample_ratio(downsample_ratio, info)
        guidance = _InstanceGuidance(Path(masks), info) if masks is not None else None
        first = _read_first_mask(Path(first_mask), info) if first_mask is not None else None
        instances = guidance.names if guidance is not None else None
        planned = plan_outputs(out, kinds, format, instances)
        refuse_inputs_as_outputs(out, planned, [p for p in (input, masks, first_mask, background) if p])
        scene = None
        if "composite" in kinds:
            scene = open_background(background, info.width, info.height)
            stack.callback(scene.close)
        # outputs are locked (and refused if they exist) before the weights are loaded
        writers = stack.enter_context(OutputWriters(planned, info, scene, lossless, overwrite))
        if engine is None:
            engine = load_engine(settings, backend)
        elif engine.settings.model != model:
            raise VidmatteError(f"the engine runs {engine.settings.model}, not {model}")
        if guidance is not None:
            matted = guidance.matte(reader, engine.msgvim_chunks(), chunk or CHUNK_SIZE)
        else:
            people = None
            if first is None and segmentor != "own":
                from vidmatte.segmentation.first_frame import PeopleSegmentor

                people = PeopleSegmentor(device=device)
            if bidirectional:
                window = chunk or BIDIRECTIONAL_WINDOW
                matted = _bidirectional(
                    reader, engine.adam_bidirectional(first, downsample_ratio, people), window
                )
            else:
                matted = _online(reader, engine.adam_online(first, downsample_ratio, people))
        if progress is None:
            progress = sys.stderr.isatty()
        bar = stack.enter_context(
            tqdm(total=info.frame_count, unit="frame", desc=input.name, disable=not progress, leave=False)
        )
        start = time.perf_counter()
        count = 0
        for item in matted:
            writers.submit(item)
            count += 1
            bar.update()
            if on_frame is not None:
                on_frame(item)
        paths = writers.finish()
        seconds = time.perf_counter() - start
    return MatteResult(input, paths, count, seconds, instances or [], reader.truncation)


def _check_options(
    settings: EngineSettings,
    outputs: Sequence[str],
    masks: str | os.PathLike | None,
    first_mask: str | os.PathLike | None,
    bidirectional: bool,
    chunk: int | None,
    downsample_ratio: float | None,
    segmentor: str | None,
) -> list[str]:
    """The output kinds, after refusing options that the model does not take."""
    kinds = list(dict.fromkeys(outputs))
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown or not kinds:
        name = unknown[0] if unknown else ""
        raise VidmatteError(f"unknown output {name!r}; expected some of {', '.join(OUTPUT_KINDS)}")
    if chunk is not None and chunk < 1:
        raise VidmatteError(f"chunk must be at least 1 frame, got {chunk}")
    if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
        raise VidmatteError(f"downsample ratio must be in (0, 1], got {downsample_ratio}")
    if segmentor not in (None, *SEGMENTORS):
        raise VidmatteError(f"unknown segmentor {segmentor!r}; expected one of {', '.join(SEGMENTORS)}")
    if settings.model == "msgvim":
        refused = {
            "--segmentor (AdaM's first-frame segmentor)": segmentor is not None,
            "--first-mask (AdaM's; MSG-VIM takes --masks)": first_mask is not None,
            "--bidirectional (AdaM's)": bidirectional,
            "--downsample-ratio (AdaM's)": downsample_ratio is not None,
            "--outputs foreground (MSG-VIM predicts no foreground colour; use composite or rgba)": (
                "foreground" in kinds
            ),
        }
    else:
        refused = {
            "--masks (MSG-VIM's; AdaM takes --first-mask)": masks is not None,
            "--chunk (for MSG-VIM and --bidirectional)": chunk is not None and not bidirectional,
        }
    for option, given in refused.items():
        if given:
            raise VidmatteError(f"{settings.model} does not take {option}")
    return kinds


def _track_people(input: Path, device: str, folder: Path) -> Path:
    """MSG-VIM's guidance when none is given: the people's tracks, as ``vidmatte segment`` makes them."""
    from vidmatte.segmentation.tracks import default_track_builder

    print(f"{input}: no --masks given: tracking the people first (as vidmatte segment does)", file=sys.stderr)
    with open_frames(input, accept_truncated=True) as frames:
        tracks = default_track_builder(device)(frame.image for frame in frames)
    if not tracks.tracks:
        raise VidmatteError(
            f"{input}: nobody found to matte (MSG-VIM mattes people; --model adam mattes all)"
        )
    print(f"{input}: {len(tracks.tracks)} people tracked", file=sys.stderr)
    path = folder / "tracks.json"
    tracks.write_json(path)
    return path


def _check_downsample_ratio(ratio: float, info: VideoInfo) -> None:
    """Refuse a ratio that leaves AdaM's network too few pixels for ``info``'s frames."""
    least = min_downsample_ratio(info.height, info.width)
    if ratio < least:
        raise VidmatteError(
            f"{info.path}: --downsample-ratio {ratio:g} leaves the network fewer than {MIN_NETWORK_SIDE} "
            f"pixels on the short side of its {info.width}x{info.height} frames; use {least:g} or more "
            "(or auto)"
        )


def _output_format(out: str | os.PathLike, format: str | None) -> str:
    """The format asked for, checked against the output file's suffix."""
    if format is not None and format not in FORMATS:
        raise VidmatteError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    implied = format_of(out)
    if implied is not None and format is not None and implied != format:
        raise VidmatteError(f"{out}: a {Path(out).suffix} file is not of format {format}")
    return format or implied or "mp4"


def _read_first_mask(path: Path, info: VideoInfo) -> np.ndarray:
    """``(H, W)`` float32 0/1 mask of the first frame, checked to fit the frames."""
    mask = read_mask(path)
    check_mask_size(mask.shape, (info.height, info.width), str(path))
    return mask.astype(np.float32)


def _batches(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    iterator = iter(frames)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _online(frames: Iterable[Frame], matter: FrameMatter) -> Iterator[MattedFrame]:
    for frame in frames:
        alpha, foreground = matter(frame.image)
        yield MattedFrame(frame, alpha[None], foreground)


def _bidirectional(frames: Iterable[Frame], matter: WindowMatter, window: int) -> Iterator[MattedFrame]:
    for batch in _batches(frames, window):
        # the backward pass yields the last frame first; mattes wait as 8 bits for their turn
        mattes = {
            t: (to_u8(alpha), to_u8(foreground)) for t, alpha, foreground in matter([f.image for f in batch])
        }
        for t, frame in enumerate(batch):
            alpha, foreground = (x.astype(np.float32) / 255 for x in mattes.pop(t))
            yield MattedFrame(frame, alpha[None], foreground)


class _InstanceGuidance:
    """MSG-VIM's guidance for one input: YouTube-VIS tracks or a folder of PNG masks per instance.

    Checked on creation, before any frame is matted: at least one instance, masks of the frames'
    size (every track's RLE size; each instance's first PNG), and no mask past the video's last frame
    (its declared frame count, or a count of its packets where it declares none).

    Attributes:
        names: instance names (PNG folder names, or ``"000"``, ``"001"``, ... for tracks).
    """

    def __init__(self, masks: Path, info: VideoInfo) -> None:
        frames = info.frame_count if info.frame_count is not None else count_frames(info.path)
        self._guidance = GuidanceSource(masks).clip(info.path.name, info.frame_names, frames)
        # decision: no instance is an error, not an empty success: nothing would be matted, and a run that
        # exits 0 without a matte hides a wrong video id or an empty segmentation
        if not self._guidance.names:
            if isinstance(self._guidance, TrackGuidance):
                raise VidmatteError(f"{masks}: no track for {info.path.name}, so no instance to matte")
            raise VidmatteError(
                f"{masks}: no instance folder (<instance>/<frame>.png), so no instance to matte"
            )
        self._guidance.check_size((info.height, info.width))
        self.names = self._guidance.names

    def matte(self, frames: Iterable[Frame], matter: ChunkMatter, chunk: int) -> Iterator[MattedFrame]:
        """Matte ``chunk`` frames at a time with ``matter`` (a fresh MSG-VIM chunk matter)."""
        for batch in _batches(frames, chunk):
            rgb = np.stack([f.image for f in batch]).astype(np.float32) / 255
            size = rgb.shape[1:3]
            targets = np.stack([self._guidance.masks(f.index, size) for f in batch], axis=1)
            alphas = matter(rgb, targets, union_of_others(targets))
            for t, frame in enumerate(batch):
                yield MattedFrame(frame, alphas[:, t], None)
