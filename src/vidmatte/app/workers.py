"""The server's worker processes: each job (and each first-frame analysis) runs in its own process.

decision: a fresh process per task (``spawn``) rather than a pool: a cancelled task is ended by
signalling its process, which never leaves a half-used model or thread behind, and the page's server
stays responsive whatever the task does with the CPU. Starting one costs a second or two (importing
torch), small beside matting.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

STOP_GRACE = 10.0  # seconds a cancelled task has to clean up before it is killed


class Workers:
    """The worker processes this server started, by the folder each works in."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[Path, BaseProcess] = {}
        self._lock = threading.Lock()

    def start(self, folder: Path, target: Callable[..., None], *args: object) -> None:
        """Run ``target(str(folder), *args)`` in a new process."""
        process = self._context.Process(target=target, args=(str(folder), *args), daemon=True)
        with self._lock:
            self._processes[folder] = process
        try:
            process.start()
        except BaseException:
            with self._lock:
                self._processes.pop(folder, None)
            raise

    def running(self, folder: Path) -> bool:
        """A process of this server works in ``folder`` now."""
        with self._lock:
            process = self._processes.get(folder)
        return process is not None and process.is_alive()

    def exit_code(self, folder: Path) -> int | None:
        """How the task in ``folder`` ended: its exit code, ``None`` while it runs or if this server
        never started it."""
        with self._lock:
            process = self._processes.get(folder)
        return None if process is None else process.exitcode

    def stop(self, folder: Path) -> None:
        """End the task in ``folder`` (SIGTERM, then SIGKILL after :data:`STOP_GRACE`) and wait for it."""
        with self._lock:
            process = self._processes.pop(folder, None)
        if process is None:
            return
        process.terminate()
        process.join(STOP_GRACE)
        if process.is_alive():
            process.kill()
            process.join()

    def stop_all(self) -> None:
        """End every task (the server is stopping)."""
        with self._lock:
            folders = list(self._processes)
        for folder in folders:
            self.stop(folder)
