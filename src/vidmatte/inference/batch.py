"""Batch matting: many inputs, one output folder each, resumable, one bad item never stops the rest.

Inputs come from a folder or a manifest file:

- a folder that holds no image directly: its videos and its sub-folders of images, in name order, each
  written to ``OUT/<name>/`` (the file or folder name without its suffix);
- ``list.txt``: one input per line (blank lines and ``#`` comments skipped);
- ``items.csv``: a header row with ``input`` and optionally ``output``, ``masks``, ``first_mask``;
- ``items.json``: a list of inputs, or of objects with those keys.

Relative paths in a manifest are relative to the manifest's folder. An ``output`` name is a relative
path inside ``OUT``: an absolute path, ``..``, a hidden name (``.x``, reserved for partial files) or
``summary.json`` is refused before anything runs.

Resuming: after an item's outputs are complete and renamed into place, the item is appended to the
ledger ``OUT/.vidmatte-ledger.jsonl`` with the options it was matted with. A rerun skips the items the
ledger records with the same options and whose outputs exist, and mattes the others again (an
interrupted item left only hidden partial files, which are replaced).

Failures: an item that fails (unreadable video, masks that do not fit, disk full, ...) is recorded
and the batch goes on. ``OUT/summary.json`` lists every item with its status (``done``, ``truncated``,
``skipped`` or ``failed``), frames, seconds and error. An interrupted batch (Ctrl-C, SIGTERM) still
writes it, with the items finished so far and the one it was matting as ``interrupted``.

Locks: a batch locks ``OUT`` (``OUT/.vidmatte-batch.lock``), so that a second batch on the same folder
is refused while the first runs, and each item's outputs are locked like those of any
:func:`~vidmatte.inference.video.matte_video` run. An item that the ledger does not record as complete
is matted again and its previous outputs replaced.

Under ``torchrun`` each rank mattes a disjoint shard of the items (:mod:`vidmatte.parallel.sharding`)
and rank 0 writes the summary of all.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from vidmatte.errors import VidmatteError
from vidmatte.io.atomic import AtomicOutput
from vidmatte.io.frames import IMAGE_EXTENSIONS
from vidmatte.io.jsonfile import malformed_content, read_json
from vidmatte.io.lock import OutputLock
from vidmatte.io.reader import VIDEO_EXTENSIONS
from vidmatte.parallel.sharding import gather_shards, is_main

if TYPE_CHECKING:
    from vidmatte.inference.engine import Engine, EngineSettings
    from vidmatte.parallel.distributed import DistributedContext

MANIFEST_SUFFIXES = (".txt", ".csv", ".json")
MANIFEST_KEYS = ("input", "output", "masks", "first_mask")
LEDGER_NAME = ".vidmatte-ledger.jsonl"
LOCK_NAME = ".vidmatte-batch.lock"
SUMMARY_NAME = "summary.json"
STATUSES = ("done", "truncated", "skipped", "failed", "interrupted")


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch.

    Attributes:
        name: its output folder under ``OUT``, a relative ``/``-separated path.
        input: the video file or image folder.
        masks: MSG-VIM guidance for this input (YouTube-VIS JSON or a folder of PNG masks).
        first_mask: AdaM's first-frame mask for this input.
    """

    name: str
    input: Path
    masks: Path | None = None
    first_mask: Path | None = None


@dataclass(frozen=True)
class ItemRecord:
    """What became of one item; a row of ``summary.json``.

    Attributes:
        item: the item's output name.
        input: the input path.
        status: ``"done"`` (matted in this run), ``"truncated"`` (matted in this run as far as the
            video could be decoded, with ``accept_truncated``), ``"skipped"`` (completed by an earlier
            run), ``"failed"`` or ``"interrupted"`` (the batch was stopped while matting it).
        frames: frames matted (0 if failed).
        seconds: time it took (in the run that completed it, for a skipped item).
        error: the one-line error of a failed item, or why a truncated one ended early; else ``None``.
        outputs: the outputs written, relative to ``OUT``.
    """

    item: str
    input: str
    status: str
    frames: int
    seconds: float
    error: str | None
    outputs: list[str]


@dataclass(frozen=True)
class BatchSummary:
    """Every item's record, in item order, and where the summary was written (rank 0 only)."""

    records: list[ItemRecord]
    path: Path | None

    @property
    def failed(self) -> list[ItemRecord]:
        return [r for r in self.records if r.status == "failed"]

    def line(self) -> str:
        """``"12 items: 9 done, 2 skipped, 1 failed (summary: out/summary.json)"``."""
        counts = {status: sum(r.status == status for r in self.records) for status in STATUSES}
        where = f" (summary: {self.path})" if self.path is not None else ""
        return f"{len(self.records)} items: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + where


def is_batch_input(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a manifest file or a folder of videos and image folders (not of images)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() in MANIFEST_SUFFIXES
    if not path.is_dir():
        return False
    return not any(p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() for p in path.iterdir())


def read_items(source: str | os.PathLike, out: str | os.PathLike) -> list[BatchItem]:
    """The items of a folder or manifest (see the module docstring), their output names checked.

    Args:
        source: a folder or a manifest file.
        out: the output folder (excluded from a folder's items when it lies inside it).

    Raises:
        VidmatteError: an unreadable or malformed manifest, an unsafe output name, two items with the
            same output, an empty batch.
    """
    source = Path(source)
    if source.is_dir():
        items = _folder_items(source, Path(out))
    elif source.suffix.lower() == ".csv":
        items = _csv_items(source)
    elif source.suffix.lower() == ".json":
        items = _json_items(source)
    else:
        items = _text_items(source)
    if not items:
        raise VidmatteError(f"{source}: no input in the batch")
    _check_distinct(items, source)
    return items


def _folder_items(folder: Path, out: Path) -> list[BatchItem]:
    out = out.resolve()
    items = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.resolve() == out:
            continue
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            items.append(BatchItem(output_name(path.stem, path), path))
        elif path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir()):
            items.append(BatchItem(output_name(path.name, path), path))
    return items


def _text_items(manifest: Path) -> list[BatchItem]:
    try:
        lines = manifest.read_text().splitlines()
    except (OSError, UnicodeError) as error:
        raise VidmatteError(f"{manifest}: cannot read the manifest ({error})") from None
    entries = [line.strip() for line in lines]
    return [_item({"input": e}, manifest, n) for n, e in enumerate(entries, 1) if e and not e.startswith("#")]


def _csv_items(manifest: Path) -> list[BatchItem]:
    try:
        rows = list(csv.DictReader(manifest.read_text().splitlines()))
    except (OSError, UnicodeError, csv.Error) as error:
        raise VidmatteError(f"{manifest}: cannot read the manifest ({error})") from None
    return [_item(row, manifest, n) for n, row in enumerate(rows, 2)]


def _json_items(manifest: Path) -> list[BatchItem]:
    entries = read_json(manifest)
    if not isinstance(entries, list):
        raise VidmatteError(f"{manifest}: expected a list of inputs, found {type(entries).__name__}")
    return [_item(e if isinstance(e, dict) else {"input": e}, manifest, n) for n, e in enumerate(entries, 1)]


def _item(entry: Mapping[str | None, Any], manifest: Path, number: int) -> BatchItem:
    """One manifest entry (``number``: its line, or its position in a JSON list) as a :class:`BatchItem`."""
    where = f"{manifest} item {number}"
    unknown = sorted(str(k) for k in entry if k not in MANIFEST_KEYS)
    if unknown:
        raise VidmatteError(
            f"{where}: unknown field {unknown[0]!r}; expected some of {', '.join(MANIFEST_KEYS)}"
        )
    with malformed_content(manifest, f"manifest item {number}"):
        values = {k: v for k, v in entry.items() if v not in (None, "")}
        if not isinstance(values.get("input"), str):
            raise VidmatteError(f"{where}: no input path")
        paths = {
            k: _resolve(str(values[k]), manifest) for k in ("input", "masks", "first_mask") if k in values
        }
        name = str(values["output"]) if "output" in values else paths["input"].stem
    return BatchItem(output_name(name, where), paths["input"], paths.get("masks"), paths.get("first_mask"))


def _resolve(text: str, manifest: Path) -> Path:
    path = Path(text)
    return path if path.is_absolute() else manifest.parent / path


def output_name(text: str, source: str | os.PathLike) -> str:
    """``text`` as a relative ``/``-separated path that stays inside the output folder.

    Raises:
        VidmatteError: an empty or absolute name, ``..``, a hidden part, or a reserved name.
    """
    posix = PurePosixPath(text.replace("\\", "/"))
    parts = [part for part in posix.parts if part != "."]
    escapes = posix.is_absolute() or bool(PureWindowsPath(text).drive) or ".." in parts
    if not parts or escapes or text.startswith("~"):
        raise VidmatteError(f"{source}: output {text!r} must be a relative path inside the output folder")
    if any(part.startswith(".") for part in parts) or parts[0] == SUMMARY_NAME:
        raise VidmatteError(f"{source}: output {text!r} is reserved (hidden names, {SUMMARY_NAME})")
    return "/".join(parts)


def _check_distinct(items: Sequence[BatchItem], source: Path) -> None:
    """Refuse two items writing to the same folder, or one inside another's."""
    owners = {}
    for item in items:
        if item.name in owners:
            _collision(owners[item.name], item, source)
        owners[item.name] = item
    for item in items:
        parts = item.name.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in owners:
                _collision(owners["/".join(parts[:depth])], item, source)


def _collision(first: BatchItem, second: BatchItem, source: Path) -> None:
    raise VidmatteError(
        f"{source}: {first.input} and {second.input} would both write to {first.name!r}; "
        "give them distinct outputs (a manifest with an output column)"
    )


class Ledger:
    """The record of completed items: one JSON line each, appended when the item's outputs are in place.

    A line torn by a kill mid-write is ignored (its item is redone).
    """

    def __init__(self, out: Path) -> None:
        self.path = out / LEDGER_NAME
        self._out = out
        self.entries: dict[str, dict] = {}
        try:
            lines = self.path.read_text().splitlines() if self.path.is_file() else []
        except (OSError, UnicodeError) as error:
            raise VidmatteError(f"{self.path}: cannot read the batch ledger ({error})") from None
        for line in lines:
            try:
                entry = json.loads(line)
                self.entries[str(entry["item"])] = entry
            except (ValueError, KeyError, TypeError):
                continue

    def completed(self, item: BatchItem, fingerprint: str) -> dict | None:
        """The ledger entry of ``item`` if it was completed with the same options and its outputs exist."""
        entry = self.entries.get(item.name)
        if entry is None or entry.get("fingerprint") != fingerprint:
            return None
        outputs = entry.get("outputs")
        if not isinstance(outputs, list) or not all((self._out / str(p)).exists() for p in outputs):
            return None
        if not isinstance(entry.get("frames"), int) or not isinstance(entry.get("seconds"), float | int):
            return None
        return entry

    def record(self, entry: dict) -> None:
        """Append ``entry`` in one write and flush it to disk."""
        line = (json.dumps(entry) + "\n").encode()
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, line)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise VidmatteError(f"{self.path}: cannot write the batch ledger ({error.strerror})") from None
        self.entries[entry["item"]] = entry


def _fingerprint(item: BatchItem, shared: Mapping[str, Any]) -> str:
    """A digest of everything that decides an item's outputs: its input, masks and the shared options."""
    options = {**{k: str(v) for k, v in shared.items()}, **{k: str(v) for k, v in asdict(item).items()}}
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


def matte_batch(
    source: str | os.PathLike,
    out: str | os.PathLike,
    settings: EngineSettings,
    *,
    backend: str = "torch",
    options: Mapping[str, Any] | None = None,
    context: DistributedContext | None = None,
    raise_errors: bool = False,
    progress: bool | None = None,
    report: Callable[[ItemRecord], None] | None = None,
) -> BatchSummary:
    """Matte every item of a folder or manifest into ``out/<item>/``.

    Args:
        source: a folder of videos and image folders, or a manifest (see the module docstring).
        out: the output root; it also holds the ledger and ``summary.json``.
        settings: the model and weights (loaded once, when the first item needs them).
        backend: the runtime of :func:`~vidmatte.inference.engine.load_engine`.
        options: keyword arguments of :func:`~vidmatte.inference.video.matte_video` shared by every
            item (``outputs``, ``format``, ``background``, ``downsample_ratio``, ``bidirectional``,
            ``chunk``, ``lossless``); they and the model decide whether an earlier run's outputs can be
            kept.
        context: under ``torchrun``, the process group: each rank mattes its shard of the items.
        raise_errors: raise an item's error instead of recording it (for debugging).
        progress: a progress bar per item (default: if stderr is a terminal).
        report: called with each item's record as soon as it is known (on the rank that did it).

    Returns:
        Every item's record; rank 0 has also written ``out/summary.json``.

    Raises:
        VidmatteError: a bad manifest or output folder, another batch running on ``out`` (before any
            item runs), or the summary cannot be written. An item's own failure is recorded, not raised.
        KeyboardInterrupt: the batch was interrupted; rank 0 has written the summary of the items it
            knows of (under ``torchrun``, its own shard), the interrupted one included.
    """
    from vidmatte.inference.engine import load_engine
    from vidmatte.inference.video import matte_video

    out = Path(out)
    items = read_items(source, out)
    shared = {
        "model": settings.model,
        "checkpoint": settings.checkpoint,
        "precision": settings.precision,
        **(options or {}),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise VidmatteError(f"{out}: cannot write there ({error.strerror})") from None
    with _locked(out, context):
        ledger = Ledger(out)
        fingerprints = {item.name: _fingerprint(item, shared) for item in items}
        known: dict[str, ItemRecord] = {}  # this rank's records so far, for an interrupted batch's summary

        def matte_item(item: BatchItem, engine: Engine) -> ItemRecord:
            target = out / item.name
            if not target.resolve().is_relative_to(out.resolve()):
                raise VidmatteError(f"{target}: leads outside {out} (a link?)")
            result = matte_video(
                item.input,
                target,
                model=settings.model,
                masks=item.masks,
                first_mask=item.first_mask,
                engine=engine,
                progress=progress,
                overwrite=True,  # the ledger decides which items to redo
                **(options or {}),
            )
            outputs = [p.relative_to(out).as_posix() for p in result.outputs]
            ledger.record(
                {
                    "item": item.name,
                    "fingerprint": fingerprints[item.name],
                    "frames": result.frames,
                    "seconds": result.seconds,
                    "outputs": outputs,
                }
            )
            status, message = "done", None
            if result.truncation is not None:
                status, message = "truncated", f"{item.input}: truncated video, {result.truncation}"
            return ItemRecord(
                item.name, str(item.input), status, result.frames, result.seconds, message, outputs
            )

        def run_shard(shard: list[BatchItem]) -> dict[str, ItemRecord]:
            done = {item.name: ledger.completed(item, fingerprints[item.name]) for item in shard}
            # weights that cannot be loaded fail the whole batch, not each item in turn
            engine = load_engine(settings, backend) if None in done.values() else None
            records = {}
            for item in shard:
                entry = done[item.name]
                if entry is not None:
                    record = ItemRecord(
                        item.name,
                        str(item.input),
                        "skipped",
                        entry["frames"],
                        entry["seconds"],
                        None,
                        entry["outputs"],
                    )
                else:
                    try:
                        record = matte_item(item, engine)
                    except KeyboardInterrupt:
                        known[item.name] = ItemRecord(
                            item.name, str(item.input), "interrupted", 0, 0.0, None, []
                        )
                        raise
                    except Exception as error:  # recorded, so that the other items still run
                        if raise_errors:
                            raise
                        message = (
                            str(error)
                            if isinstance(error, VidmatteError)
                            else f"{item.input}: {type(error).__name__}: {error}"
                        )
                        record = ItemRecord(
                            item.name, str(item.input), "failed", 0, 0.0, message.splitlines()[0], []
                        )
                if report is not None:
                    report(record)
                records[item.name] = known[item.name] = record
            return records

        try:
            merged = gather_shards(items, run_shard, context)
        except KeyboardInterrupt:
            if is_main(context):
                with contextlib.suppress(VidmatteError):  # the interruption is what the user must hear of
                    _write_summary(out, [known[item.name] for item in items if item.name in known])
            raise
        records = [merged[item.name] for item in items]
        path = _write_summary(out, records) if is_main(context) else None
        return BatchSummary(records, path)


@contextlib.contextmanager
def _locked(out: Path, context: DistributedContext | None) -> Iterator[None]:
    """Hold ``out``'s batch lock for the whole launch: rank 0 takes it, and its refusal reaches every rank."""
    with contextlib.ExitStack() as stack:

        def lock(shard: list[str]) -> dict[str, None]:
            for _ in shard:
                stack.enter_context(OutputLock(out / LOCK_NAME, out))
            return {}

        gather_shards(["lock"], lock, context)  # one work item, so rank 0's shard
        yield


def _write_summary(out: Path, records: list[ItemRecord]) -> Path:
    path = out / SUMMARY_NAME
    summary = {
        "items": [asdict(r) for r in records],
        **{status: sum(r.status == status for r in records) for status in STATUSES},
    }
    output = AtomicOutput(path)
    try:
        output.partial.write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as error:
        output.discard()
        raise VidmatteError(f"{path}: cannot write ({error.strerror})") from None
    output.commit()
    return path
