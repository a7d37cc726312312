"""The VIM50 folder runner and the ``vidmatte eval-vim`` command on hand-built folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import write_image
from vidmatte.metrics.vim_runner import evaluate_vim

H, W, FRAMES = 16, 20, 4


def _person(index: int, frame: int) -> np.ndarray:
    alpha = np.zeros((H, W), np.uint8)
    alpha[2:10, 1 + 6 * index + frame % 2 : 6 + 6 * index + frame % 2] = 255
    alpha[10, 1 + 6 * index : 6 + 6 * index] = 128  # a soft edge
    return alpha


def _write_truth(root: Path, clips: dict[str, int]) -> None:
    for clip, people in clips.items():
        for i in range(people):
            for t in range(FRAMES):
                write_image(root / clip / "pha" / f"person{i}" / f"{t:05d}.png", _person(i, t))
        write_image(root / clip / "com" / "00000.png", np.zeros((H, W, 3), np.uint8))  # ignored


def _write_pred(root: Path, clip: str, people: list[int], names: list[str] | None = None) -> None:
    (root / clip).mkdir(parents=True, exist_ok=True)
    for name, i in zip(names or [f"{k}" for k in range(len(people))], people, strict=True):
        for t in range(FRAMES):
            write_image(root / clip / name / f"{t:05d}.png", _person(i, t))


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    _write_truth(tmp_path / "VIM50", {"clipA": 2, "clipB": 3})
    return tmp_path / "VIM50"


def test_perfect_prediction_gives_100_through_the_cli(truth: Path, tmp_path: Path, capsys):
    pred = tmp_path / "pred"
    _write_pred(pred, "clipA", [1, 0], names=["x", "y"])  # names and order differ from the truth
    _write_pred(pred, "clipB", [0, 1, 2])
    out = tmp_path / "out" / "vimq.json"
    assert main(["eval-vim", "--pred", str(pred), "--true", str(truth), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "VIMQ_dtssd" in table
    result = json.loads(out.read_text())
    assert set(result["overall"]) == {"RQ", "TQ"} | {
        f"{k}_{e}" for e in ("mse", "mad", "dtssd") for k in ("MQ", "VIMQ")
    }
    assert all(v == pytest.approx(100.0) for v in result["overall"].values())
    assert result["clips"]["clipA"]["matches"] == {"person0": "y", "person1": "x"}
    assert result["clips"]["clipB"]["TP"] == 3


def test_error_option_limits_the_report(truth: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    _write_pred(pred, "clipA", [0, 1])
    out = tmp_path / "r.json"
    args = ["eval-vim", "--pred", str(pred), "--true", str(truth), "--clips", "clipA", "--error", "mad"]
    assert main([*args, "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())["overall"]) == {"RQ", "TQ", "MQ_mad", "VIMQ_mad"}


def test_missing_and_extra_instances(truth: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    _write_pred(pred, "clipA", [0, 1, 2])  # one extra (person 2 does not exist in clipA)
    _write_pred(pred, "clipB", [2])  # two missing
    results = evaluate_vim(pred, truth, errors=["mse"])
    a, b = results.clips["clipA"], results.clips["clipB"]
    assert (a.true_positives, a.false_positives, a.false_negatives) == (2, 1, 0)
    assert (b.true_positives, b.false_positives, b.false_negatives) == (1, 0, 2)
    assert a.rq == pytest.approx(2 / 2.5) and b.rq == pytest.approx(1 / 2)
    assert results.overall["RQ"] == pytest.approx((2 / 2.5 + 1 / 2) / 2 * 100)
    assert results.overall["TQ"] == pytest.approx(100.0)


def test_empty_prediction_folder_scores_zero(truth: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    (pred / "clipA").mkdir(parents=True)
    score = evaluate_vim(pred, truth, clips=["clipA"]).clips["clipA"]
    assert (score.rq, score.tq, score.false_negatives) == (0.0, 0.0, 2)


def test_missing_clip_is_an_error_naming_the_folder(truth: Path, tmp_path: Path, capsys):
    pred = tmp_path / "pred"
    _write_pred(pred, "clipA", [0, 1])
    with pytest.raises(VidmatteError, match=r"pred/clipB: no such folder"):
        evaluate_vim(pred, truth)
    assert main(["eval-vim", "--pred", str(pred), "--true", str(truth)]) == 2
    assert "vidmatte: error: " in capsys.readouterr().err


def test_missing_frame_is_an_error_naming_the_file(truth: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    _write_pred(pred, "clipA", [0, 1])
    (pred / "clipA" / "1" / "00002.png").unlink()
    with pytest.raises(VidmatteError, match=r"clipA/1/00002\.png: no such frame"):
        evaluate_vim(pred, truth, clips=["clipA"])


def test_size_mismatch_is_an_error_naming_the_file(truth: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    _write_pred(pred, "clipA", [0, 1])
    write_image(pred / "clipA" / "0" / "00001.png", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(VidmatteError, match=r"clipA/0/00001\.png: size 20x17 differs"):
        evaluate_vim(pred, truth, clips=["clipA"])


def test_unknown_clip_and_empty_truth(truth: Path, tmp_path: Path):
    with pytest.raises(VidmatteError, match="clipZ: no such clip"):
        evaluate_vim(tmp_path, truth, clips=["clipZ"])
    (tmp_path / "empty" / "clip" / "com").mkdir(parents=True)
    with pytest.raises(VidmatteError, match="empty: no clip with a pha/ folder"):
        evaluate_vim(tmp_path, tmp_path / "empty")
