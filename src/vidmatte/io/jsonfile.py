"""Reading JSON files (annotations, segmenter results) with one-line errors that name the file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
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
    # nesting deeper than Python's recursion limit raises RecursionError from the decoder
    except (OSError, UnicodeError, json.JSONDecodeError, RecursionError) as error:
        raise VidmatteError(f"{path}: not a readable JSON file ({error})") from None


@contextlib.contextmanager
def malformed_content(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Report a decoded JSON value of the wrong shape (a missing key, a string where a list belongs, a
    number out of range) as a one-line error naming the file, instead of the exception it raised.

    Raises:
        VidmatteError: ``"<path>: malformed <what> (KeyError: 'videos')"``.
    """
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError) as error:
        raise VidmatteError(f"{path}: malformed {what} ({type(error).__name__}: {error})") from None
