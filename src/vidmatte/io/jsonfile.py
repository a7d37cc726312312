"""Reading JSON files (annotations, segmenter results) with one-line errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vidmatte.errors import VidmatteError


def read_json(path: str | os.PathLike) -> Any:
    """The decoded content of a JSON file.

    Raises:
        VidmatteError: a missing, unreadable or malformed file, naming it.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise VidmatteError(f"{path}: no such file") from None
    except (OSError, UnicodeError, json.JSONDecodeError) as error:
        raise VidmatteError(f"{path}: not a readable JSON file ({error})") from None
