"""JSON files (annotations, segmenter results, evaluation results): read with one-line errors that name
the file, written whole at once (:func:`~vidmatte.io.atomic.write_text_atomic`)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vidmatte.errors import VidmatteError
from vidmatte.io.atomic import write_text_atomic


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


def write_json(
    path: str | os.PathLike, value: Any, *, indent: int | None = None, make_parents: bool = True
) -> None:
    """Replace the file ``path`` with ``value`` as JSON (and a final newline), atomically.

    Args:
        path: the file.
        value: anything :func:`json.dumps` takes.
        indent: as :func:`json.dumps`'s (``None``: one line).
        make_parents: make missing folders (see :func:`~vidmatte.io.atomic.write_text_atomic`).

    Raises:
        VidmatteError: the file cannot be written, naming it.
    """
    write_text_atomic(path, json.dumps(value, indent=indent) + "\n", make_parents=make_parents)


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
