"""Training checkpoints: safetensors weights plus a small state file, written atomically, the last K kept.

A checkpoint of step ``n`` is two files in the run's ``checkpoints/`` folder:

- ``step-0000000n.safetensors``: the model's weights, recording the model's name and the step in
  its metadata (``vidmatte.load_model`` reads it directly);
- ``step-0000000n.state.pt``: optimiser, scheduler, gradient scaler, step, data positions and
  RNG states, saved by ``torch.save`` and read back with ``weights_only=True``.

Each file is written to a temporary name, flushed to disk, then renamed, and the state file is
written last: a process killed at any moment leaves either a complete checkpoint or none (a
stray temporary file is ignored and overwritten).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidmatte.errors import VidmatteError

WEIGHTS_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.pt"
_NAME = re.compile(r"^step-(\d+)\.state\.pt$")


@dataclass(frozen=True)
class Checkpoint:
    """The two files of one checkpoint."""

    step: int
    weights: Path
    state: Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class CheckpointStore:
    """The checkpoints of one run.

    Args:
        folder: where the checkpoints live (created on the first save).
        keep_last: complete checkpoints kept; older ones are deleted after each save.
    """

    def __init__(self, folder: str | os.PathLike, keep_last: int) -> None:
        self.folder = Path(folder)
        self.keep_last = keep_last

    def paths(self, step: int) -> Checkpoint:
        stem = self.folder / f"step-{step:08d}"
        return Checkpoint(
            step, stem.with_name(stem.name + WEIGHTS_SUFFIX), stem.with_name(stem.name + STATE_SUFFIX)
        )

    def save(
        self, step: int, weights: dict[str, Tensor], state: dict[str, Any], metadata: dict[str, str]
    ) -> Checkpoint:
        """Write checkpoint ``step`` and prune old ones.

        Args:
            step: the step the checkpoint was taken after.
            weights: the model's state dict.
            state: everything else needed to resume (tensors, numbers, strings, lists, dicts).
            metadata: strings stored in the weights file.
        """
        from safetensors.torch import save as safetensors_bytes

        self.folder.mkdir(parents=True, exist_ok=True)
        checkpoint = self.paths(step)
        tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
        write_atomic(checkpoint.weights, safetensors_bytes(tensors, metadata={**metadata, "step": str(step)}))
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_atomic(checkpoint.state, buffer.getvalue())
        for old in self.complete()[: -self.keep_last]:
            old.state.unlink(missing_ok=True)
            old.weights.unlink(missing_ok=True)
        return checkpoint

    def complete(self) -> list[Checkpoint]:
        """Checkpoints whose two files exist, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.iterdir():
            match = _NAME.match(path.name)
            if match:
                checkpoint = self.paths(int(match.group(1)))
                if checkpoint.weights.is_file():
                    found.append(checkpoint)
        return sorted(found, key=lambda c: c.step)

    def latest(self) -> Checkpoint | None:
        """The newest complete checkpoint, or ``None``."""
        complete = self.complete()
        return complete[-1] if complete else None


def find_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The checkpoint named by either of its files.

    Raises:
        VidmatteError: not a checkpoint file, or its other half is missing.
    """
    path = Path(path)
    name = path.name.removesuffix(STATE_SUFFIX).removesuffix(WEIGHTS_SUFFIX)
    match = re.match(r"^step-(\d+)$", name)
    if not match:
        raise VidmatteError(f"{path}: not a checkpoint (expected step-<n>.safetensors or step-<n>.state.pt)")
    checkpoint = CheckpointStore(path.parent, 1).paths(int(match.group(1)))
    for part in (checkpoint.weights, checkpoint.state):
        if not part.is_file():
            raise VidmatteError(f"{part}: missing half of checkpoint {path}")
    return checkpoint


def read_state(path: str | os.PathLike) -> dict[str, Any]:
    """A state file, read without running any pickled code.

    Raises:
        VidmatteError: unreadable, or holding anything but plain values and tensors.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe pickles
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise VidmatteError(f"{path}: not a readable training state ({first_line})") from None
    if not isinstance(state, dict):
        raise VidmatteError(f"{path}: not a training state (a {type(state).__name__})")
    return state
