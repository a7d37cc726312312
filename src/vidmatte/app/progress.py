"""A job's progress as the page reads it: its state file, rewritten a few times a second.

``state.json`` holds ``status`` (``running``, ``done`` or ``failed``), ``phase`` (``"tracking people"``,
``"matting"``), ``frames_done``, ``frames_total`` (``None`` when the container does not say), ``fps``,
``seconds_left``, ``live_first`` and ``live_last`` (the frames of the live preview on disk), and when
finished ``outputs`` or ``error``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vidmatte.app.state_file import write_state

WRITE_INTERVAL = 0.25  # seconds between state writes while frames come


class JobProgress:
    """The state file of one job (or of the first-frame analysis).

    Args:
        path: the state file.
        frames_total: the video's frames, ``None`` if unknown.
    """

    def __init__(self, path: Path, frames_total: int | None) -> None:
        self.path = path
        self.state: dict[str, Any] = {"status": "running", "phase": "starting", "frames_total": frames_total}
        self._first: tuple[int, float] | None = None
        self._written = -float("inf")
        self.phase("starting")

    def phase(self, name: str) -> None:
        """Start a phase of the job: frames counted from 0 again."""
        self._first = None
        self.state.update(phase=name, frames_done=0, fps=None, seconds_left=None)
        self._write()

    def frames(self, done: int, **extra: Any) -> None:
        """``done`` frames of the phase are done; ``extra`` goes into the state too."""
        now = time.monotonic()
        # the speed from the first frame on: loading the models is not part of it
        self._first = self._first or (done, now)
        frames, elapsed = done - self._first[0], now - self._first[1]
        fps = frames / elapsed if frames and elapsed > 0 else None
        total = self.state["frames_total"]
        left = (total - done) / fps if fps and total is not None else None
        self.state.update(frames_done=done, fps=fps, seconds_left=left, **extra)
        if now - self._written >= WRITE_INTERVAL:
            self._write()

    def finish(self, **result: Any) -> None:
        """The job is done; ``result`` (e.g. its outputs) goes into the state."""
        self.state.update(status="done", seconds_left=0, **result)
        self._write()

    def fail(self, error: str) -> None:
        """The job failed with the one-line ``error``."""
        self.state.update(status="failed", error=error)
        self._write()

    def _write(self) -> None:
        write_state(self.path, self.state)
        self._written = time.monotonic()
