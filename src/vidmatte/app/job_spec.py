"""What the page asks a matting job to do, checked before the job starts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidmatte.errors import VidmatteError
from vidmatte.inference.backgrounds import parse_colour
from vidmatte.inference.engine import MODELS
from vidmatte.inference.outputs import OUTPUT_KINDS
from vidmatte.io.jsonfile import write_json

# the page offers single-file outputs only (a PNG folder does not download as one file)
FORMATS = ("mp4", "webm", "prores", "mkv")
IMAGE_BACKGROUND = "image"  # the session's uploaded background image


@dataclass(frozen=True)
class JobSpec:
    """One matting job's settings.

    Attributes:
        model: ``"adam"`` (everyone kept in one matte) or ``"msgvim"`` (one matte per kept person).
        keep: the first-frame people kept, by id (ascending).
        outputs: kinds of :data:`~vidmatte.inference.outputs.OUTPUT_KINDS`.
        format: one of :data:`FORMATS`.
        background: the composite's background: ``"#RRGGBB"``, a colour name, or :data:`IMAGE_BACKGROUND`.
    """

    model: str
    keep: list[int]
    outputs: list[str]
    format: str
    background: str

    @classmethod
    def from_request(cls, data: Any, people: list[int], has_image: bool, painted: bool = False) -> JobSpec:
        """The settings a page sent, checked.

        Args:
            data: the decoded JSON body.
            people: the ids of the first frame's people.
            has_image: the session has a background image.
            painted: the session has a painted correction of AdaM's first-frame mask.

        Raises:
            VidmatteError: a setting that is missing or not one the page offers, naming it.
        """
        if not isinstance(data, dict):
            raise VidmatteError("job settings: expected a JSON object")
        model, fmt, background = data.get("model"), data.get("format"), data.get("background", "green")
        keep, outputs = data.get("keep"), data.get("outputs")
        if model not in MODELS:
            raise VidmatteError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
        if fmt not in FORMATS:
            raise VidmatteError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        if not isinstance(outputs, list) or not outputs or not set(outputs) <= set(OUTPUT_KINDS):
            raise VidmatteError(f"outputs: expected some of {', '.join(OUTPUT_KINDS)}, got {outputs!r}")
        if not isinstance(keep, list) or not set(keep) <= set(people):
            raise VidmatteError(f"keep: expected some of the people {people}, got {keep!r}")
        if model == "msgvim" and not people:
            raise VidmatteError("nobody was found on the first frame: MSG-VIM mattes people; use AdaM")
        if people and not keep and (model == "msgvim" or not painted):
            raise VidmatteError("nobody is kept: click at least one person on the first frame")
        if not isinstance(background, str) or (
            parse_colour(background) is None and not (background == IMAGE_BACKGROUND and has_image)
        ):
            raise VidmatteError(
                f"background: expected a colour (#RRGGBB) or an uploaded image, got {background!r}"
            )
        return cls(model, sorted(keep), list(dict.fromkeys(outputs)), fmt, background)

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> JobSpec:
        return cls(**json.loads(path.read_text()))
