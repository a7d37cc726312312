"""Folder evaluator for the VM benchmark layout: walks folders, pairs frames, aggregates the metrics.

Layouts accepted for both the prediction and the ground truth (predictions mirror the truth's tree
and file names):

- ``<root>/<subset>/<clip>/pha/<frame>.png`` (the VM benchmark; ``fgr/`` beside ``pha/`` when present),
- ``<root>/<clip>/pha/<frame>.png`` (clips without subsets),
- ``<root>/pha/<frame>.png`` (a single clip).

A prediction's clip may hold ``alpha/`` and ``foreground/`` instead of ``pha/`` and ``fgr/``: the PNG
folders ``vidmatte matte --format png`` writes (under the input frames' names), so that a matted clip
is scored without renaming anything.

Frames are split into segments that worker processes score in parallel; only per-segment sums come
back, so memory does not grow with the number of frames. A clip's score is the mean over its frames;
a subset's and the overall score are means over all their frames (frames whose ground truth has no
foreground pixel have no foreground score and are left out of the foreground means).
"""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from vidmatte.errors import VidmatteError
from vidmatte.io import jsonfile
from vidmatte.io.atomic import write_text_atomic
from vidmatte.io.frames import IMAGE_EXTENSIONS, read_alpha, read_rgb_u8
from vidmatte.metrics import alpha
from vidmatte.metrics.protocols import ALL_METRICS, FGR_METRICS, PROTOCOL_METRICS, PROTOCOLS
from vidmatte.parallel.sharding import gather_shards

if TYPE_CHECKING:
    from vidmatte.parallel.distributed import DistributedContext

SEGMENT_FRAMES = 16  # frames per worker task; a segment re-reads one frame before it for dtSSD
# ground-truth folder -> the prediction folders that stand for it, by preference
PREDICTION_FOLDERS = {"pha": ("pha", "alpha"), "fgr": ("fgr", "foreground")}


@dataclass(frozen=True)
class ClipPair:
    """A clip present in both trees, with its frame names (identical on both sides)."""

    key: str  # relative path of the clip folder, "/"-separated ("." for a single clip)
    subset: str | None
    pred_dir: Path
    true_dir: Path
    frames: tuple[str, ...]


@dataclass
class Scores:
    """Running sums of per-frame metric values, and how many frames each sum holds."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        if not math.isnan(value):
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def merge(self, other: Scores) -> None:
        for name, total in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + total
            self.counts[name] = self.counts.get(name, 0) + other.counts[name]

    def means(self, metrics: Sequence[str]) -> dict[str, float]:
        return {m: self.sums[m] / self.counts[m] for m in metrics if self.counts.get(m)}


@dataclass
class EvalResults:
    """What :func:`evaluate_folders` measured: means per clip, per subset and overall."""

    protocol: str
    metrics: tuple[str, ...]
    num_frames: int
    overall: dict[str, float]
    subsets: dict[str, dict[str, float]]
    clips: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "num_frames": self.num_frames,
            "overall": self.overall,
            "subsets": self.subsets,
            "clips": self.clips,
        }


def _image_names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}


def _clip_dirs(root: Path) -> list[str]:
    """Relative paths of the folders under ``root`` that hold a ``pha/`` folder of images."""
    found = []
    for current, dirs, _ in os.walk(root):
        dirs.sort()
        if "pha" not in dirs:
            continue
        pha = Path(current) / "pha"
        if not _image_names(pha):
            if any(p.is_dir() for p in pha.iterdir()):
                raise VidmatteError(
                    f"{pha}: holds per-instance folders (the VIM50 layout); use `vidmatte eval-vim`"
                )
            raise VidmatteError(f"{pha}: folder holds no image")
        found.append(Path(current).relative_to(root).as_posix())
        dirs.clear()  # a clip folder does not hold further clips
    return found


def predicted(pred_dir: Path, kind: str) -> Path:
    """A prediction clip's folder for ``kind`` (``"pha"`` or ``"fgr"``): see :data:`PREDICTION_FOLDERS`."""
    for name in PREDICTION_FOLDERS[kind]:
        if (pred_dir / name).is_dir():
            return pred_dir / name
    return pred_dir / kind


def _check_frames(pred_dir: Path, true_dir: Path) -> tuple[str, ...]:
    """The frame names of ``true_dir``, after checking that ``pred_dir`` holds exactly the same ones."""
    if not pred_dir.is_dir():
        raise VidmatteError(f"{pred_dir}: missing (the ground truth has {true_dir})")
    true_names = _image_names(true_dir)
    pred_names = _image_names(pred_dir)
    if not true_names:
        raise VidmatteError(f"{true_dir}: folder holds no image")
    missing = sorted(true_names - pred_names)
    if missing:
        raise VidmatteError(f"{pred_dir / missing[0]}: missing frame ({len(missing)} missing in this folder)")
    extra = sorted(pred_names - true_names)
    if extra:
        raise VidmatteError(f"{pred_dir / extra[0]}: extra frame with no ground truth ({len(extra)} extra)")
    return tuple(sorted(true_names))


def find_clip_pairs(pred_root: Path, true_root: Path, with_fgr: bool) -> list[ClipPair]:
    """Pair the clips of the two trees and check that their frames correspond one to one.

    Raises:
        VidmatteError: a missing folder, a clip or frame present on one side only, an empty folder,
            or the same folder on both sides.
    """
    for root in (pred_root, true_root):
        if not root.is_dir():
            raise VidmatteError(f"{root}: no such folder")
    if pred_root.resolve() == true_root.resolve():
        raise VidmatteError(
            f"{pred_root}: the prediction and the ground truth are the same folder; every metric would be 0"
        )
    keys = _clip_dirs(true_root)
    if not keys:
        raise VidmatteError(f"{true_root}: no clip found (expected <subset>/<clip>/pha/<frame>.png)")
    extra = sorted(set(_clip_dirs(pred_root)) - set(keys))
    if extra:
        raise VidmatteError(f"{pred_root / extra[0]}: extra clip with no ground truth")
    pairs = []
    for key in keys:
        pred_dir, true_dir = pred_root / key, true_root / key
        frames = _check_frames(predicted(pred_dir, "pha"), true_dir / "pha")
        if with_fgr:
            if not (true_dir / "fgr").is_dir():
                raise VidmatteError(f"{true_dir / 'fgr'}: missing, but foreground metrics were asked for")
            if _check_frames(predicted(pred_dir, "fgr"), true_dir / "fgr") != frames:
                raise VidmatteError(f"{true_dir / 'fgr'}: frames differ from {true_dir / 'pha'}")
        parent = Path(key).parent.as_posix()
        pairs.append(ClipPair(key, None if parent == "." else parent, pred_dir, true_dir, frames))
    return pairs


def _read_pair(pair: ClipPair, kind: str, name: str, reader) -> tuple[np.ndarray, np.ndarray]:
    pred_path = predicted(pair.pred_dir, kind) / name
    pred = reader(pred_path)
    true = reader(pair.true_dir / kind / name)
    if pred.shape != true.shape:
        raise VidmatteError(
            f"{pred_path}: size {pred.shape[1]}x{pred.shape[0]} differs from the "
            f"ground truth's {true.shape[1]}x{true.shape[0]}"
        )
    return pred, true


def score_segment(pair: ClipPair, start: int, stop: int, metrics: tuple[str, ...], protocol: str) -> Scores:
    """Score frames ``start:stop`` of a clip (reading frame ``start - 1`` too, for dtSSD)."""
    scores = Scores()
    previous = _read_pair(pair, "pha", pair.frames[start - 1], read_alpha) if start > 0 else None
    wants_fgr = any(m in metrics for m in FGR_METRICS)
    for index in range(start, stop):
        name = pair.frames[index]
        pred, true = _read_pair(pair, "pha", name, read_alpha)
        if "pha_mad" in metrics:
            scores.add("pha_mad", alpha.mad(pred, true))
        if "pha_mse" in metrics:
            scores.add("pha_mse", alpha.mse(pred, true))
        if "pha_grad" in metrics:
            scores.add("pha_grad", alpha.grad(pred, true, normalize=protocol == "lr"))
        if "pha_conn" in metrics:
            scores.add("pha_conn", alpha.conn(pred, true))
        if "pha_dtssd" in metrics:
            if previous is None:
                scores.add("pha_dtssd", 0.0)
            else:
                if previous[0].shape != pred.shape:
                    raise VidmatteError(
                        f"{predicted(pair.pred_dir, 'pha') / name}: size differs from the previous frame"
                    )
                scores.add("pha_dtssd", alpha.dtssd(pred, previous[0], true, previous[1]))
        previous = (pred, true)
        if wants_fgr:
            pred_fgr, true_fgr = _read_pair(pair, "fgr", name, read_rgb_u8)
            if true_fgr.shape[:2] != true.shape:
                raise VidmatteError(f"{pair.true_dir / 'fgr' / name}: size differs from its alpha")
            fgr_mad, fgr_mse = alpha.foreground_errors(pred_fgr, true_fgr, true)
            if "fgr_mad" in metrics:
                scores.add("fgr_mad", fgr_mad)
            if "fgr_mse" in metrics:
                scores.add("fgr_mse", fgr_mse)
    return scores


def _segments(pairs: list[ClipPair]) -> Iterator[tuple[ClipPair, int, int]]:
    for pair in pairs:
        for start in range(0, len(pair.frames), SEGMENT_FRAMES):
            yield pair, start, min(start + SEGMENT_FRAMES, len(pair.frames))


def default_workers() -> int:
    """The number of cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def warm_up_kernels(metrics: Sequence[str] = ALL_METRICS) -> None:
    """Compile (or load from numba's cache) the kernels of ``metrics`` once, before worker processes fork.

    Only the kernels that the metrics use: a cold cache compiles nothing else, a warm one loads nothing
    else. Numba caches the machine code beside the package (``cache=True``; in the user's cache folder
    where the package's folder is read-only), so only the first evaluation after installing compiles.
    """
    frame = np.zeros((16, 16), np.float32)
    if "pha_mad" in metrics or "pha_mse" in metrics:
        alpha.mad(frame, frame)
    if "pha_grad" in metrics:
        alpha.grad(frame, frame)
    if "pha_conn" in metrics:
        alpha.conn(frame, frame)
    if "pha_dtssd" in metrics:
        alpha.dtssd(frame, frame, frame, frame)
    if any(m in metrics for m in FGR_METRICS):
        colour = np.zeros((16, 16, 3), np.uint8)
        colour.setflags(write=False)  # as Pillow hands them over: one specialisation, compiled here
        alpha.foreground_errors(colour, colour, frame)


def _score_all(
    pairs: list[ClipPair], metrics: tuple[str, ...], protocol: str, workers: int, progress: bool
) -> dict[str, Scores]:
    per_clip = {pair.key: Scores() for pair in pairs}
    total = sum(len(pair.frames) for pair in pairs)
    bar = tqdm(total=total, unit="frame", disable=not progress, desc="eval", dynamic_ncols=True)
    warm_up_kernels(metrics)
    # processes only for what can keep them busy: one per segment at most, none for a single segment
    workers = min(workers, sum(1 for _ in _segments(pairs)))
    with bar:
        if workers <= 1:
            for pair, start, stop in _segments(pairs):
                per_clip[pair.key].merge(score_segment(pair, start, stop, metrics, protocol))
                bar.update(stop - start)
            return per_clip
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        # per-segment sums are kept and merged in frame order at the end, so that the floating-point
        # sums (and the scores) do not depend on which worker finishes first
        finished: dict[tuple[str, int], Scores] = {}
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: dict[Future, tuple[str, int, int]] = {}
            tasks = _segments(pairs)
            try:
                while True:
                    # Keep a bounded number of segments in flight so the queue never holds the whole set.
                    for pair, start, stop in tasks:
                        future = pool.submit(score_segment, pair, start, stop, metrics, protocol)
                        pending[future] = (pair.key, start, stop - start)
                        if len(pending) >= 4 * workers:
                            break
                    if not pending:
                        break
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        key, start, frames = pending.pop(future)
                        finished[key, start] = future.result()
                        bar.update(frames)
            finally:
                for future in pending:
                    future.cancel()
    for pair, start, _ in _segments(pairs):
        per_clip[pair.key].merge(finished[pair.key, start])
    return per_clip


def evaluate_folders(
    pred: str | os.PathLike,
    true: str | os.PathLike,
    protocol: str = "lr",
    metrics: Sequence[str] | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    context: DistributedContext | None = None,
) -> EvalResults:
    """Score a folder of predicted mattes against the ground truth.

    Args:
        pred: predictions, mirroring ``true``'s tree and file names.
        true: ground truth in the VM benchmark layout (or a clip folder, or a folder of clips).
        protocol: ``"lr"`` (512x288: Grad on min-max normalised mattes) or ``"hr"`` (1920x1080: no
            normalisation; Conn and foreground MAD are not computed unless asked for).
        metrics: subset of :data:`ALL_METRICS`; default: the protocol's. By default the foreground
            metrics are computed only when every clip has ``fgr/`` on both sides.
        workers: processes scoring frames in parallel (default: all cores).
        progress: show a progress bar (default: when stderr is a terminal).
        context: under ``torchrun``, the process group: each rank scores its shard of the clips and
            every rank returns the results of all (equal to one process's, see :mod:`.sharding`).

    Raises:
        VidmatteError: bad input, naming the offending file or folder.
    """
    if protocol not in PROTOCOLS:
        raise VidmatteError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    pred_root, true_root = Path(pred), Path(true)
    if metrics is None:
        chosen = PROTOCOL_METRICS[protocol]
        pairs = find_clip_pairs(pred_root, true_root, with_fgr=False)
        has_fgr = all(predicted(p.pred_dir, "fgr").is_dir() and (p.true_dir / "fgr").is_dir() for p in pairs)
        if has_fgr:
            pairs = find_clip_pairs(pred_root, true_root, with_fgr=True)
        else:
            chosen = tuple(m for m in chosen if m not in FGR_METRICS)
    else:
        unknown = sorted(set(metrics) - set(ALL_METRICS))
        if unknown:
            raise VidmatteError(f"unknown metric {unknown[0]!r}; expected some of {', '.join(ALL_METRICS)}")
        chosen = tuple(m for m in ALL_METRICS if m in metrics)
        pairs = find_clip_pairs(pred_root, true_root, with_fgr=any(m in FGR_METRICS for m in chosen))
    if progress is None:
        progress = sys.stderr.isatty()
    per_clip = gather_shards(
        pairs,
        lambda shard: _score_all(shard, chosen, protocol, workers or default_workers(), progress),
        context,
    )

    overall = Scores()
    per_subset: dict[str, Scores] = {}
    for pair in pairs:
        overall.merge(per_clip[pair.key])
        if pair.subset is not None:
            per_subset.setdefault(pair.subset, Scores()).merge(per_clip[pair.key])
    return EvalResults(
        protocol=protocol,
        metrics=chosen,
        num_frames=sum(len(p.frames) for p in pairs),
        overall=overall.means(chosen),
        subsets={name: s.means(chosen) for name, s in sorted(per_subset.items())},
        clips={pair.key: per_clip[pair.key].means(chosen) for pair in pairs},
    )


def format_table(results: EvalResults) -> str:
    """A fixed-width table: one row per subset, then the overall row."""
    rows = [*results.subsets.items(), ("overall", results.overall)]
    width = max(len(name) for name, _ in rows)
    header = f"{'':<{width}}" + "".join(f"{m:>11}" for m in results.metrics)
    lines = [f"protocol {results.protocol}, {results.num_frames} frames, {len(results.clips)} clips", header]
    for name, means in rows:
        cells = "".join(f"{means[m]:>11.4f}" if m in means else f"{'-':>11}" for m in results.metrics)
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def write_json(results: EvalResults, path: str | os.PathLike) -> None:
    """Write ``{"protocol", "num_frames", "overall", "subsets", "clips"}`` as JSON."""
    jsonfile.write_json(path, results.to_dict(), indent=2)


def write_csv(results: EvalResults, path: str | os.PathLike) -> None:
    """Write one row per clip, then per subset, then overall: ``level,name,<metrics...>``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["level", "name", *results.metrics])
    rows = [
        *(("clip", k, v) for k, v in results.clips.items()),
        *(("subset", k, v) for k, v in results.subsets.items()),
        ("overall", "overall", results.overall),
    ]
    for level, name, means in rows:
        writer.writerow([level, name, *(repr(means[m]) if m in means else "" for m in results.metrics)])
    write_text_atomic(path, buffer.getvalue())
