"""Walk a VIM50-style ground truth and a prediction folder and score them with VIMQ.

Layouts:

* ground truth: ``<true>/<clip>/pha/<instance>/<frame>.png`` (``com/`` and other folders are ignored);
* predictions: ``<pred>/<clip>/<instance>/<frame>.png``.

Instance folder names need not agree between the two (VIMQ matches instances itself); frames are
paired by file name without extension. Frames are streamed: a clip holds only the current and the
previous frame of each instance, plus a few ``(G, P)`` matrices per frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vidmatte.errors import VidmatteError
from vidmatte.io import jsonfile
from vidmatte.io.frames import list_frames, read_alpha, select_folders
from vidmatte.metrics.vimq import (
    ERRORS,
    REPORT_SCALE,
    ClipScore,
    FrameStatistics,
    frame_statistics,
    score_clip,
    score_dataset,
)
from vidmatte.parallel.sharding import gather_shards

if TYPE_CHECKING:
    from vidmatte.parallel.distributed import DistributedContext

TRUE_ALPHA_FOLDER = "pha"


@dataclass(frozen=True)
class VimResults:
    """Scores of a VIMQ evaluation.

    Attributes:
        overall: ``{"RQ", "TQ", "MQ_<error>", "VIMQ_<error>"}`` in percent.
        clips: per clip name, its :class:`ClipScore`.
        instance_names: per clip name, ``(ground-truth names, predicted names)`` in index order.
        errors: the matting errors scored.
    """

    overall: dict[str, float]
    clips: dict[str, ClipScore]
    instance_names: dict[str, tuple[list[str], list[str]]]
    errors: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready ``{"overall": {...}, "clips": {clip: {...}}}``, scores in percent."""
        clips = {}
        for name, score in self.clips.items():
            true_names, pred_names = self.instance_names[name]
            row = {"RQ": score.rq * REPORT_SCALE, "TQ": score.tq * REPORT_SCALE}
            for error in self.errors:
                row[f"MQ_{error}"] = score.mq[error] * REPORT_SCALE
                row[f"VIMQ_{error}"] = score.vimq(error) * REPORT_SCALE
            row.update(
                TP=score.true_positives,
                FP=score.false_positives,
                FN=score.false_negatives,
                matches={true_names[g]: pred_names[p] for g, p in score.matches},
            )
            clips[name] = row
        return {"overall": self.overall, "clips": clips}


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _frames_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in list_frames(folder)}


def _true_clips(true_root: Path) -> list[Path]:
    if not true_root.is_dir():
        raise VidmatteError(f"{true_root}: no such folder")
    clips = [c for c in _subfolders(true_root) if (c / TRUE_ALPHA_FOLDER).is_dir()]
    if not clips:
        raise VidmatteError(
            f"{true_root}: no clip with a {TRUE_ALPHA_FOLDER}/ folder (expected <clip>/pha/<instance>/)"
        )
    return clips


def _read_stack(paths: Sequence[Path], size: tuple[int, int] | None) -> np.ndarray:
    """Read alphas into ``(N, H, W)`` float32, checking each against ``size`` ``(H, W)`` when given."""
    alphas = []
    for path in paths:
        alpha = read_alpha(path)
        if size is not None and alpha.shape != size:
            raise VidmatteError(
                f"{path}: size {alpha.shape[1]}x{alpha.shape[0]} differs from the ground truth's "
                f"{size[1]}x{size[0]}"
            )
        alphas.append(alpha)
    return np.stack(alphas) if alphas else np.zeros((0, *(size or (0, 0))), np.float32)


def evaluate_clip(
    pred_clip: Path, true_clip: Path, errors: Sequence[str] = ERRORS
) -> tuple[ClipScore, tuple[list[str], list[str]]]:
    """Score one clip folder pair (``true_clip`` holds ``pha/<instance>/``).

    Returns:
        The clip's score and the ``(ground-truth, predicted)`` instance names in index order.

    Raises:
        VidmatteError: a missing folder or frame, or a frame whose size differs from the ground truth.
    """
    true_instances = _subfolders(true_clip / TRUE_ALPHA_FOLDER)
    if not true_instances:
        raise VidmatteError(f"{true_clip / TRUE_ALPHA_FOLDER}: no instance folder")
    if not pred_clip.is_dir():
        raise VidmatteError(f"{pred_clip}: no such folder (the prediction of clip {true_clip.name})")
    pred_instances = _subfolders(pred_clip)
    true_frames = [_frames_by_stem(folder) for folder in true_instances]
    pred_frames = [_frames_by_stem(folder) for folder in pred_instances]
    stems = list(true_frames[0])
    with_dtssd = "dtssd" in errors
    statistics: list[FrameStatistics] = []
    true_prev = pred_prev = None
    for stem in stems:
        true_paths = [
            _frame(frames, folder, stem) for frames, folder in zip(true_frames, true_instances, strict=True)
        ]
        pred_paths = [
            _frame(frames, folder, stem) for frames, folder in zip(pred_frames, pred_instances, strict=True)
        ]
        true = _read_stack(true_paths, None)
        if len({a.shape for a in true}) != 1:
            raise VidmatteError(f"{true_paths[0]}: ground-truth instances of frame {stem} differ in size")
        pred = _read_stack(pred_paths, true.shape[1:])
        statistics.append(frame_statistics(true, pred, true_prev, pred_prev))
        if with_dtssd:
            true_prev, pred_prev = true, pred
    score = score_clip(statistics, errors)
    return score, ([p.name for p in true_instances], [p.name for p in pred_instances])


def _frame(frames: dict[str, Path], folder: Path, stem: str) -> Path:
    if stem not in frames:
        raise VidmatteError(f"{folder / stem}.png: no such frame (expected as in the ground truth)")
    return frames[stem]


def evaluate_vim(
    pred_root: str | os.PathLike,
    true_root: str | os.PathLike,
    errors: Sequence[str] = ERRORS,
    clips: Sequence[str] | None = None,
    context: DistributedContext | None = None,
) -> VimResults:
    """Score every clip of a VIM50-style ground truth against its prediction folder.

    Args:
        pred_root: ``<pred>/<clip>/<instance>/<frame>.png``.
        true_root: ``<true>/<clip>/pha/<instance>/<frame>.png``.
        errors: matting errors for MQ (any of ``"mse"``, ``"mad"``, ``"dtssd"``).
        clips: clip names to score (default: every clip of the ground truth).
        context: under ``torchrun``, the process group: each rank scores its shard of the clips and
            every rank returns the results of all (equal to one process's, see :mod:`.sharding`).

    Raises:
        VidmatteError: a missing clip, instance or frame, or a size mismatch; the message names the file.
    """
    errors = tuple(errors)
    unknown = [e for e in errors if e not in ERRORS]
    if unknown or not errors:
        raise VidmatteError(f"unknown error {unknown}; known: {', '.join(ERRORS)}")
    pred_root, true_root = Path(pred_root), Path(true_root)
    true_clips = select_folders(_true_clips(true_root), clips, true_root)
    per_clip = gather_shards(
        true_clips,
        lambda shard: {clip.name: evaluate_clip(pred_root / clip.name, clip, errors) for clip in shard},
        context,
    )
    scores = {clip.name: per_clip[clip.name][0] for clip in true_clips}
    names = {clip.name: per_clip[clip.name][1] for clip in true_clips}
    return VimResults(
        overall=score_dataset(list(scores.values()), errors),
        clips=scores,
        instance_names=names,
        errors=errors,
    )


def format_table(results: VimResults) -> str:
    """A plain-text table: one row per clip, then the overall row (scores in percent)."""
    columns = ["RQ", "TQ"] + [f"{kind}_{e}" for e in results.errors for kind in ("MQ", "VIMQ")]
    table = results.to_dict()
    width = max([len("overall"), *(len(c) for c in table["clips"])])
    lines = [f"{'clip':<{width}} " + " ".join(f"{c:>11}" for c in columns)]
    for name, row in [*table["clips"].items(), ("overall", table["overall"])]:
        lines.append(f"{name:<{width}} " + " ".join(f"{row[c]:>11.2f}" for c in columns))
    return "\n".join(lines)


def write_json(results: VimResults, path: str | os.PathLike) -> None:
    """Write :meth:`VimResults.to_dict` as indented JSON, atomically, creating parent folders."""
    jsonfile.write_json(path, results.to_dict(), indent=2)
