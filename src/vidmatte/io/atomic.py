"""Atomic outputs: locked, written under a hidden name unique to the run, renamed into place when complete.

An output is locked (:mod:`.lock`) while it is written, so that a second run writing the same output is
refused instead of mixing its frames into the first's. Its partial name carries the run's pid and a
random tag (``out/.alpha.4242-9f3c01ab.partial.mp4``), so two runs never share a temporary file either.
An interrupted run (exception, Ctrl-C, SIGTERM through the command line) removes its partial file and
the folders it created; a killed one (SIGKILL) leaves a hidden partial file, which the next run that
locks the same output removes. So no output ever looks complete when it is not.

Small files written whole (JSON results, state files) take :func:`write_text_atomic`: no lock, but the
same unique partial name and one rename.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from vidmatte.errors import VidmatteError
from vidmatte.io.lock import OutputLock, lock_path

PARTIAL_TAG = ".partial"
_Output = TypeVar("_Output", bound="FinishOrAbort")


def partial_path(final: Path, run: str) -> Path:
    """The temporary name of ``final`` for run ``run``: ``out/alpha.mp4`` -> ``out/.alpha.<run>.partial.mp4``.

    The suffix is kept last so that the muxer still recognises the container from the name.
    """
    return final.with_name(f".{final.stem}.{run}{PARTIAL_TAG}{final.suffix}")


def partials_of(final: Path) -> list[Path]:
    """The partial files and folders of ``final`` left in its folder by any run (see :func:`partial_path`)."""
    pattern = re.compile(rf"\.{re.escape(final.stem)}\.\d+-[0-9a-f]+{re.escape(PARTIAL_TAG + final.suffix)}")
    if not final.parent.is_dir():
        return []
    return sorted(p for p in final.parent.iterdir() if pattern.fullmatch(p.name))


class FinishOrAbort:
    """An output written in steps, as a context manager: a ``with`` block that ends normally calls
    :meth:`finish`, one left by an exception (``KeyboardInterrupt`` included) calls :meth:`abort`."""

    def finish(self) -> None:
        """Complete the output."""
        raise NotImplementedError

    def abort(self) -> None:
        """Remove what was written; never raises."""
        raise NotImplementedError

    def __enter__(self: _Output) -> _Output:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


class AtomicOutput:
    """One output file or folder, locked and written under a partial name, renamed when complete.

    Call :meth:`commit` or :meth:`discard` once; both release the lock.

    Attributes:
        final: where the output belongs once complete.
        partial: where it is written meanwhile (unique to this run).
        created: the folders made for it, outermost first (removed again by :meth:`discard` if empty).
    """

    def __init__(self, final: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Lock ``final``, make its folder and remove partial outputs that killed runs left of it.

        Args:
            final: the output path.
            overwrite: replace an existing output; ``False`` refuses one.

        Raises:
            VidmatteError: the folder cannot be written, another run is writing ``final``, or ``final``
                exists and ``overwrite`` is false.
        """
        self.final = Path(final)
        self.created = make_folders(self.final)
        self._lock = OutputLock(lock_path(self.final), self.final)
        try:
            self._lock.acquire()
            if not overwrite and (self.final.exists() or self.final.is_symlink()):
                raise VidmatteError(f"{self.final}: exists already; --overwrite replaces it")
            # this run holds the lock, so the partial outputs of any other run are those of a dead one
            for stale in partials_of(self.final):
                _remove(stale)
        except BaseException:
            self._release(remove_folders=True)
            raise
        self.partial = partial_path(self.final, f"{os.getpid()}-{secrets.token_hex(4)}")

    def commit(self) -> None:
        """Move the complete partial output to its final name, replacing any previous output there."""
        try:
            if self.partial.is_dir():
                # os.replace cannot put a folder over a non-empty one: move the old one aside first
                stale = self.partial.with_name(f"{self.partial.name}.old")
                if self.final.exists():
                    os.replace(self.final, stale)
                os.replace(self.partial, self.final)
                _remove(stale)
            else:
                os.replace(self.partial, self.final)
        except OSError as error:
            raise VidmatteError(f"{self.final}: cannot write there ({error.strerror or error})") from None
        finally:
            self._release(remove_folders=False)

    def discard(self) -> None:
        """Remove the partial output and the folders made for it that stayed empty; never raises."""
        with contextlib.suppress(OSError):
            _remove(self.partial)
        self._release(remove_folders=True)

    def _release(self, remove_folders: bool) -> None:
        self._lock.release()
        if remove_folders:
            remove_empty(self.created)
            self.created = []


def write_text_atomic(path: str | os.PathLike, text: str, *, make_parents: bool = True) -> None:
    """Replace the file ``path`` with ``text`` at once: written beside it under a name unique to this write
    (:func:`partial_path`), then renamed, so a reader (another process too) sees the old file or the new
    one, never half of one, and two writers never share a partial file.

    Args:
        path: the file.
        text: its whole content.
        make_parents: make missing folders; ``False`` makes a missing folder an error (a state file
            whose folder was removed meanwhile stays removed).

    Raises:
        VidmatteError: the file cannot be written, naming it (no partial file is left).
    """
    path = Path(path)
    partial = partial_path(path, f"{os.getpid()}-{secrets.token_hex(4)}")
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text)
        os.replace(partial, path)
    except OSError as error:
        raise VidmatteError(f"{path}: cannot write there ({error.strerror or error})") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def make_folders(output: Path) -> list[Path]:
    """Make the folder of ``output`` and its missing parents; the ones made here, outermost first.

    Raises:
        VidmatteError: one cannot be made (those made before it are removed again).
    """
    folder = output.parent
    missing = []
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    try:
        for path in reversed(missing):
            try:
                path.mkdir()
                created.append(path)
            except FileExistsError:  # made by another run meanwhile: not ours to remove
                if not path.is_dir():
                    raise
    except OSError as error:
        remove_empty(created)
        raise VidmatteError(f"{output}: cannot write there ({error.strerror or error})") from None
    return created


def remove_empty(folders: list[Path]) -> None:
    """Remove those of ``folders`` (parents before children) that are empty, children first; never raises.

    A folder that something else has gone into since it was made stays, with its parents.
    """
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
