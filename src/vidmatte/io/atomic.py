"""Atomic outputs: write under a hidden partial name, rename into place only when complete.

An interrupted run (exception, Ctrl-C) removes its partial file; a killed one leaves only a hidden
``.name.partial`` entry, which the next run overwrites. So no output ever looks complete when it is not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from vidmatte.errors import VidmatteError

PARTIAL_TAG = ".partial"


def partial_path(final: Path) -> Path:
    """The temporary name of ``final``, in the same folder: ``out/alpha.mp4`` -> ``out/.alpha.partial.mp4``.

    The suffix is kept last so that the muxer still recognises the container from the name.
    """
    return final.with_name(f".{final.stem}{PARTIAL_TAG}{final.suffix}")


class AtomicOutput:
    """One output file or folder written under :func:`partial_path` and renamed when complete.

    Attributes:
        final: where the output belongs once complete.
        partial: where it is written meanwhile (any stale one from a killed run is removed first).
    """

    def __init__(self, final: str | os.PathLike) -> None:
        self.final = Path(final)
        self.partial = partial_path(self.final)
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            _remove(self.partial)
        except OSError as error:
            raise VidmatteError(f"{self.final}: cannot write there ({error.strerror or error})") from None
        if not os.access(self.final.parent, os.W_OK | os.X_OK):
            raise VidmatteError(f"{self.final}: cannot write there (folder {self.final.parent} is read-only)")

    def commit(self) -> None:
        """Move the complete partial output to its final name, replacing any previous output there."""
        try:
            if self.partial.is_dir():
                # os.replace cannot put a folder over a non-empty one: move the old one aside first
                stale = self.final.with_name(f".{self.final.name}.old")
                _remove(stale)
                if self.final.exists():
                    os.replace(self.final, stale)
                os.replace(self.partial, self.final)
                _remove(stale)
            else:
                os.replace(self.partial, self.final)
        except OSError as error:
            raise VidmatteError(f"{self.final}: cannot write there ({error.strerror or error})") from None

    def discard(self) -> None:
        """Remove the partial output (nothing else is touched); never raises."""
        with contextlib.suppress(OSError):
            _remove(self.partial)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
