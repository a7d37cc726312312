"""Per-session folders: everything a page's session writes stays inside its own folder.

A session is named by a random id (128 bits) in the page's address, so two browser tabs never share
one (each new tab opens a new session) and a reload finds its own again. Layout::

    WORKDIR/<session>/
        video.json            the video opened: {"path": ..., "name": ...}
        input/<name>          an uploaded video (a path on the machine is read where it is)
        people/               the first frame (first.png), its people (people.json), state.json
        selection.json        the people kept: {"kept": [ids]}
        correction.png        a painted correction of AdaM's first-frame mask
        background/<name>     an uploaded background image (checked in .incoming/ first)
        jobs/<job>/           one matting job: job.json (its settings), state.json (progress),
                              preview/ (live.jpg, preview.mp4), out/ (the outputs), masks for the model
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
JOB_ID = re.compile(r"[0-9]{13}-[0-9a-f]{6}")


def new_session_id() -> str:
    """A fresh random session id (22 URL-safe characters)."""
    return secrets.token_urlsafe(16)


def new_job_id() -> str:
    """A fresh job id; later jobs sort after earlier ones (milliseconds, then a random tag)."""
    return f"{time.time_ns() // 1_000_000:013d}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Session:
    """One page session's folder and the places inside it.

    Attributes:
        id: the session id.
        folder: ``WORKDIR/<id>``.
    """

    id: str
    folder: Path

    @classmethod
    def at(cls, folder: Path) -> Session:
        """The session whose folder is ``folder``."""
        return cls(folder.name, folder)

    @property
    def video_record(self) -> Path:
        return self.folder / "video.json"

    @property
    def input_folder(self) -> Path:
        return self.folder / "input"

    @property
    def people_folder(self) -> Path:
        return self.folder / "people"

    @property
    def selection_file(self) -> Path:
        return self.folder / "selection.json"

    @property
    def background_folder(self) -> Path:
        return self.folder / "background"

    @property
    def incoming_folder(self) -> Path:
        """Where an upload waits while it is checked."""
        return self.folder / ".incoming"

    @property
    def jobs_folder(self) -> Path:
        return self.folder / "jobs"

    def job_folder(self, job_id: str) -> Path:
        """The folder of job ``job_id``.

        Raises:
            KeyError: not a job id (so never a path outside the session).
        """
        if not JOB_ID.fullmatch(job_id):
            raise KeyError(job_id)
        return self.jobs_folder / job_id

    def latest_job(self) -> str | None:
        """The id of the session's most recent job, ``None`` before the first."""
        if not self.jobs_folder.is_dir():
            return None
        jobs = sorted(p.name for p in self.jobs_folder.iterdir() if JOB_ID.fullmatch(p.name))
        return jobs[-1] if jobs else None

    def public(self, message: str) -> str:
        """``message`` with the session's upload folders left out, so that an uploaded file is named as
        the person named it (``clip.mp4: ...``), as the command line would name it."""
        for folder in (self.input_folder, self.background_folder, self.incoming_folder):
            message = message.replace(f"{folder}/", "")
        return message


class SessionStore:
    """The sessions under one working folder.

    Args:
        root: the working folder (made on the first session that writes).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, session_id: str) -> Session:
        """The session ``session_id`` (its folder may not exist yet).

        Raises:
            KeyError: not a session id.
        """
        if not SESSION_ID.fullmatch(session_id):
            raise KeyError(session_id)
        return Session(session_id, self.root / session_id)
