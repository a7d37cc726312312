"""A finished job's outputs as the page offers them: a label and a file name per output."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vidmatte.inference.outputs import INSTANCES

LABELS = {
    "alpha": "Alpha",
    "foreground": "Foreground",
    "composite": "Composite",
    "rgba": "Transparent",
    INSTANCES: "The people kept, colour-coded",
}


def describe_outputs(
    paths: list[Path], job_folder: Path, video_name: str, instances: Mapping[str, int]
) -> list[dict[str, str]]:
    """One ``{"path", "label", "filename"}`` per output.

    Args:
        paths: the outputs :func:`vidmatte.matte_video` wrote (``out/alpha.mp4``, or for MSG-VIM
            ``out/alpha/000.mp4`` and ``out/instances.mp4``).
        job_folder: the job's folder (``path`` is relative to it).
        video_name: the input's name, which the download names start with.
        instances: MSG-VIM's instance names -> the first-frame person each mattes.

    >>> describe_outputs([Path("j/out/alpha/000.mp4")], Path("j"), "clip.mp4", {"000": 2})
    [{'path': 'out/alpha/000.mp4', 'label': 'Alpha, person 2', 'filename': 'clip-alpha-person2.mp4'}]
    """
    stem = Path(video_name).stem
    described = []
    for path in paths:
        relative = path.relative_to(job_folder)
        if path.parent.name in LABELS and path.stem in instances:  # MSG-VIM: out/<kind>/<instance>
            kind, person = path.parent.name, instances[path.stem]
            label, name = f"{LABELS[kind]}, person {person}", f"{stem}-{kind}-person{person}{path.suffix}"
        else:
            kind = path.stem
            label, name = LABELS.get(kind, kind), f"{stem}-{kind}{path.suffix}"
        described.append({"path": relative.as_posix(), "label": label, "filename": name})
    return described
