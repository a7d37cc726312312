"""Output locks: one run at a time writes a given output, and a killed run never blocks the next one.

decision: an ``fcntl.flock`` on a hidden lock file next to what it guards, rather than a lock file
created with ``O_CREAT | O_EXCL``. The kernel drops a flock as soon as the process that holds it ends,
however it ends (SIGKILL, a crash, a reboot), so a stale lock cannot exist and nothing has to guess
whether a recorded holder is still alive (process ids are reused; another host's pids and clocks cannot
be checked). The file records the holder's pid, host and start time only to name it in the refusal.
On Linux flock also works between NFS clients (emulated with byte-range locks). POSIX only (fcntl).

The lock file is removed when the lock is released. A run killed by SIGKILL leaves it behind, unlocked;
the next run takes it over. Taking a lock never waits: a lock held by another run is refused at once.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from vidmatte.errors import VidmatteError

LOCK_SUFFIX = ".lock"


def lock_path(guarded: Path) -> Path:
    """The lock file of an output file or folder, beside it: ``out/alpha.mp4`` -> ``out/.alpha.mp4.lock``."""
    return guarded.with_name(f".{guarded.name}{LOCK_SUFFIX}")


class OutputLock:
    """An exclusive lock on ``path`` (a lock file), refused at once if another run holds it.

    Attributes:
        path: the lock file.
        subject: what the lock guards, named in the refusal (an output, or a batch's output folder).
    """

    def __init__(self, path: Path, subject: Path) -> None:
        self.path = path
        self.subject = subject
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take the lock and record this run in the lock file.

        Raises:
            VidmatteError: another run holds it (named by pid, host and start time), or the folder
                cannot be written.
        """
        try:
            self._descriptor = self._lock()
            os.ftruncate(self._descriptor, 0)
            os.write(self._descriptor, json.dumps(_holder()).encode())
        except OSError as error:
            self.release()
            raise VidmatteError(f"{self.subject}: cannot write there ({error.strerror or error})") from None

    def _lock(self) -> int:
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(descriptor)
                os.close(descriptor)
                raise VidmatteError(
                    f"{self.subject}: in use by another vidmatte run ({holder}); wait for it to end or "
                    "give another --out"
                ) from None
            except BaseException:
                os.close(descriptor)
                raise
            # the holder we waited on may have released and removed the file between our open and our
            # flock: then our lock is on a file nobody else will open; start again with the current one
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(descriptor), os.stat(self.path)):
                    return descriptor
            os.close(descriptor)

    def release(self) -> None:
        """Remove the lock file and drop the lock (in that order, so that nobody locks a removed file
        believing it current); idempotent, never raises."""
        if self._descriptor is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._descriptor)
        self._descriptor = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()


def _holder() -> dict[str, object]:
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": started}


def _describe(descriptor: int) -> str:
    """``"pid 123 on host, started 2024-05-01T10:00:00+02:00"`` from a lock file, as far as it says."""
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0))
        return f"pid {int(holder['pid'])} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its lock file does not say which"  # written by the holder a moment after it locked
