"""The outputs of a matted video: where each goes, what each frame holds, and their writers.

Kinds (``--outputs``):

=============  ===========================================================================
``alpha``      the matte, greyscale
``foreground`` the foreground colour (straight, not premultiplied; AdaM predicts it)
``composite``  the foreground over a background (:mod:`.backgrounds`)
``rgba``       the foreground with the matte as transparency (ProRes 4444, VP9 or PNG)
=============  ===========================================================================

For MSG-VIM each kind is written once per instance, and ``instances`` shows every instance on the
frame in its own colour. A model without a foreground prediction (MSG-VIM) uses the input frame as the
foreground colour.

Layout under an output folder ``OUT`` (``EXT`` from the format; none for PNG sequences, which are
folders of frames)::

    OUT/<kind>EXT                    AdaM
    OUT/<kind>/<instance>EXT         MSG-VIM, one per instance
    OUT/instances EXT                MSG-VIM, all instances colour-coded

A single AdaM output may instead go to a file named by ``OUT`` itself (``--out matte.mp4``).
Frames are rendered in a background thread and each output is encoded in its own
(:class:`~vidmatte.io.writers.FrameWriter`), so the model does not wait for either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vidmatte.errors import VidmatteError
from vidmatte.inference.backgrounds import Background
from vidmatte.io.atomic import make_folders, remove_empty
from vidmatte.io.composite import composite_u8
from vidmatte.io.frames import to_u8
from vidmatte.io.reader import Frame, VideoInfo
from vidmatte.io.render import visualise_instances
from vidmatte.io.threads import BackgroundWorker
from vidmatte.io.writers import VIDEO_SUFFIXES, Content, FrameWriter

OUTPUT_KINDS = ("alpha", "foreground", "composite", "rgba")
DEFAULT_OUTPUTS = ("alpha", "composite")
INSTANCES = "instances"
# --format -> file suffix ("" for a folder of PNGs)
FORMATS = {"mp4": ".mp4", "prores": ".mov", "webm": ".webm", "mkv": ".mkv", "png": ""}
_SUFFIX_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "prores", ".webm": "webm", ".mkv": "mkv"}
# video types people may name as an output, which FrameWriter does not write (taken for folders otherwise)
_UNWRITABLE_VIDEO_SUFFIXES = (".avi", ".gif", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".m2ts", ".mxf", ".ogv")
_CONTENT: dict[str, Content] = {
    "alpha": "alpha",
    "foreground": "rgb",
    "composite": "rgb",
    "rgba": "rgba",
    INSTANCES: "rgb",
}
RENDER_QUEUE = 4  # matted frames waiting to be rendered


def format_of(path: str | os.PathLike) -> str | None:
    """The ``--format`` a file path implies by its suffix (``None``: not a video file, so a folder)."""
    return _SUFFIX_FORMATS.get(Path(path).suffix.lower())


class MattedFrame(NamedTuple):
    """One frame and what the model made of it.

    Attributes:
        frame: the decoded input frame (its image, index and timestamp).
        alphas: ``(N, H, W)`` float32 in [0, 1]; ``N = 1`` for AdaM, one per instance for MSG-VIM.
        foreground: ``(H, W, 3)`` float32 in [0, 1], or ``None`` where the model predicts no colour.
    """

    frame: Frame
    alphas: np.ndarray
    foreground: np.ndarray | None


@dataclass(frozen=True)
class PlannedOutput:
    """One output file or PNG folder.

    Attributes:
        path: where it goes.
        kind: a member of :data:`OUTPUT_KINDS` or :data:`INSTANCES`.
        instance: index into :attr:`MattedFrame.alphas` (``None`` for :data:`INSTANCES`).
    """

    path: Path
    kind: str
    instance: int | None


def plan_outputs(
    out: str | os.PathLike, kinds: Sequence[str], format: str, instances: Sequence[str] | None
) -> list[PlannedOutput]:
    """The outputs to write, laid out as the module docstring shows.

    Args:
        out: an output folder, or (one AdaM output) a video file.
        kinds: members of :data:`OUTPUT_KINDS`.
        format: a key of :data:`FORMATS`.
        instances: MSG-VIM's instance names; ``None`` for AdaM.

    Raises:
        VidmatteError: several outputs for one file.
    """
    out = Path(out)
    suffix = FORMATS[format]
    if out.suffix.lower() in _UNWRITABLE_VIDEO_SUFFIXES:
        raise VidmatteError(
            f"{out}: cannot write {out.suffix} videos; use .mp4, .mov, .webm, .mkv or a folder"
        )
    if out.suffix.lower() in VIDEO_SUFFIXES:
        if instances is not None or len(kinds) != 1:
            count = "instances" if instances is not None else f"{len(kinds)} outputs"
            raise VidmatteError(f"{out}: one file cannot hold {count}; give a folder as the output")
        return [PlannedOutput(out, kinds[0], 0)]
    if instances is None:
        return [PlannedOutput(out / f"{kind}{suffix}", kind, 0) for kind in kinds]
    planned = [
        PlannedOutput(out / kind / f"{name}{suffix}", kind, index)
        for kind in kinds
        for index, name in enumerate(instances)
    ]
    return [*planned, PlannedOutput(out / f"{INSTANCES}{suffix}", INSTANCES, None)]


def refuse_inputs_as_outputs(
    out: str | os.PathLike, planned: Sequence[PlannedOutput], inputs: Sequence[str | os.PathLike]
) -> None:
    """Refuse an output (or the output folder) that is one of the inputs, however it is spelled.

    Args:
        out: the output folder or file.
        planned: from :func:`plan_outputs`.
        inputs: the files and folders read (video, masks, first-frame mask, background); those that do
            not exist are ignored.

    Raises:
        VidmatteError: naming the output and the input it would replace.
    """
    sources = [Path(p) for p in inputs if os.path.exists(p)]
    for output in dict.fromkeys([Path(out), *(o.path for o in planned)]):
        for source in sources:
            if _same_file(output, source):
                raise VidmatteError(f"{output}: is the input {source}; give another --out")


def _same_file(output: Path, source: Path) -> bool:
    """Whether ``output`` names ``source``: through links, ``..``, case-insensitive file systems."""
    try:
        return os.path.samefile(output, source)
    except OSError:  # the output does not exist (yet): compare where its name leads
        return output.resolve() == source.resolve()


def render(output: PlannedOutput, matted: MattedFrame, background: np.ndarray | None) -> np.ndarray:
    """One output's frame: ``(H, W)`` for alpha, ``(H, W, 3)`` or ``(H, W, 4)`` uint8 or float in [0, 1]."""
    image = matted.frame.image
    if output.kind == INSTANCES:
        return visualise_instances(image, matted.alphas)
    alpha = matted.alphas[output.instance]
    if output.kind == "alpha":
        return alpha
    colour = matted.foreground if matted.foreground is not None else image.astype(np.float32) / 255
    if output.kind == "foreground":
        return colour
    if output.kind == "composite":
        return composite_u8(colour, alpha, background)
    return np.concatenate([to_u8(colour), to_u8(alpha)[..., None]], axis=-1)


class OutputWriters:
    """The writers of one video's outputs: :meth:`submit` matted frames, then :meth:`finish`.

    Leaving a ``with`` block by an exception aborts every output, so none appears at its final name
    unless complete.
    """

    def __init__(
        self,
        planned: Sequence[PlannedOutput],
        info: VideoInfo,
        background: Background | None,
        lossless: bool = False,
        overwrite: bool = False,
    ) -> None:
        """Open (and lock) every output: a file type that cannot hold its content, an output that another
        run is writing or that exists already fails here, before any frame.

        Args:
            planned: from :func:`plan_outputs`.
            info: the input's size, rate, time base and audio (copied into video outputs).
            background: the composites' background (the caller closes it); needed if there is a composite.
            lossless: exact alpha in ``.mp4`` and ``.webm`` too.
            overwrite: replace existing outputs; by default one that exists is refused.
        """
        self.planned = list(planned)
        self._writers: list[FrameWriter] = []
        self._background = background
        if background is None and any(o.kind == "composite" for o in self.planned):
            raise ValueError("a composite output needs a background")
        # made here rather than by each writer, so that abort removes them whichever writer failed first
        self._folders: list[Path] = []
        try:
            for output in self.planned:
                self._folders += make_folders(output.path)
            for output in self.planned:
                self._writers.append(
                    FrameWriter(
                        output.path, _CONTENT[output.kind], info, lossless=lossless, overwrite=overwrite
                    )
                )
        except BaseException:
            self.abort()
            raise
        self._worker: BackgroundWorker[MattedFrame] = BackgroundWorker(
            self._write, RENDER_QUEUE, name="vidmatte render"
        )

    def _write(self, matted: MattedFrame) -> None:
        background = self._background.next_frame() if self._background is not None else None
        for output, writer in zip(self.planned, self._writers, strict=True):
            writer.write(render(output, matted, background), matted.frame.pts)

    def submit(self, matted: MattedFrame) -> None:
        """Queue a frame for rendering and encoding (blocks while the queue is full)."""
        self._worker.submit(matted)

    def finish(self) -> list[Path]:
        """Render and encode what is queued, complete every output; their paths."""
        try:
            self._worker.join()
            for writer in self._writers:  # all encoded before any is renamed into place
                writer.encode()
            for writer in self._writers:
                writer.finish()
        except BaseException:
            self.abort()
            raise
        return [output.path for output in self.planned]

    def abort(self) -> None:
        """Stop and remove every partial output, and the folders made for them; never raises."""
        worker = getattr(self, "_worker", None)
        if worker is not None:
            worker.cancel()
        for writer in self._writers:
            writer.abort()
        remove_empty(self._folders)

    def __enter__(self) -> OutputWriters:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
