"""Small JSON state files that one process writes and others read while it runs.

A writer replaces the whole file at once (written beside it, then renamed), so a reader never sees half
of one; a missing file reads as ``None``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vidmatte.io.jsonfile import write_json


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace ``path`` with ``state`` as JSON, atomically (a reader sees the old or the new file)."""
    write_json(path, state, make_parents=False)


def read_state(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when there is none (yet, or any more)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
