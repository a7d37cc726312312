"""Bad input at the entry points: one line naming the file, a non-zero exit, no traceback unless --debug.

The readers' own bad-input tests live with them (test_io_video.py, test_training_checkpoint.py); these
cover what they leave out, through the command line where a user meets them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from vidmatte import build_model, load_model
from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.models.loading import save_weights


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``vidmatte argv``."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, path: Path | str, message: str = "") -> None:
    assert code != 0
    assert err.startswith(f"vidmatte: error: {path}"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


# ---------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def adam_tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_weights(
        build_model("adam-tiny"), tmp_path_factory.mktemp("w") / "adam.safetensors", "adam-tiny"
    )


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


BAD_WEIGHTS = {
    "empty safetensors": (lambda d, w: _write(d / "empty.safetensors", b""), "cannot read weights"),
    "text safetensors": (lambda d, w: _write(d / "notes.safetensors", b"hello\n"), "cannot read weights"),
    "truncated safetensors": (lambda d, w: _truncated(w, d / "cut.safetensors"), "cannot read weights"),
    # a header length of 2^62 bytes must be refused, not allocated
    "huge header": (
        lambda d, w: _write(d / "huge.safetensors", struct.pack("<Q", 2**62) + b"{}"),
        "too large",
    ),
    "empty pickle": (lambda d, w: _write(d / "empty.pt", b""), "refused, not a plain tensor file"),
    "text pickle": (lambda d, w: _write(d / "notes.pt", b"hello\n"), "refused, not a plain tensor file"),
    "truncated pickle": (lambda d, w: _truncated(_saved_pt(d / "whole.pt"), d / "cut.pt"), "refused"),
    "pickle of a list": (
        lambda d, w: _saved_pt(d / "list.pt", [torch.zeros(1)]),
        "expected a dict of tensors",
    ),
    "directory": (lambda d, w: _mkdir(d / "dir.safetensors"), "no such weights file"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _saved_pt(path: Path, value: object = None) -> Path:
    torch.save(build_model("adam-tiny").state_dict() if value is None else value, path)
    return path


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_unreadable_weights_are_refused_with_one_line(
    tmp_path: Path, adam_tiny_file: Path, case: str
) -> None:
    make, message = BAD_WEIGHTS[case]
    path = make(tmp_path, adam_tiny_file)
    with pytest.raises(VidmatteError, match=message) as caught:
        load_model(path, model="adam-tiny")
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_infinite_weights_are_refused(tmp_path: Path) -> None:
    state = {k: v.clone() for k, v in build_model("adam-tiny").state_dict().items()}
    state["encoder.reduce.weight"].view(-1)[3] = float("-inf")
    torch.save(state, tmp_path / "inf.pt")
    with pytest.raises(VidmatteError, match=r"inf\.pt: non-finite values in encoder\.reduce\.weight"):
        load_model(tmp_path / "inf.pt", model="adam-tiny")


def test_weights_of_the_other_model_through_the_cli(
    tmp_path: Path, adam_tiny_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["matte-vim", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--masks", str(tmp_path)]
    code, err = run_cli(capsys, *argv, "--weights", str(adam_tiny_file))
    assert_one_line_error(code, err, adam_tiny_file, "weights of a AdamModel network, not of MsgVim")
    code, err = run_cli(capsys, *argv, "--weights", str(adam_tiny_file), "--model", "msgvim-tiny")
    assert_one_line_error(code, err, adam_tiny_file, "weights of adam-tiny, not of msgvim-tiny")
    with pytest.raises(VidmatteError):  # --debug: the exception itself, with its traceback
        main(["--debug", *argv, "--weights", str(adam_tiny_file), "--model", "msgvim-tiny"])
    assert not (tmp_path / "out").exists()
