"""The folder evaluator: pairing, aggregation, parallel equality, outputs and bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from tests.oracles import reference_metrics as ref
from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import read_alpha, read_rgb, write_image
from vidmatte.metrics import runner

H, W = 24, 32


def _matte(rng: np.random.Generator) -> np.ndarray:
    field = gaussian_filter(rng.random((H, W)), 3)
    field = (field - field.min()) / (field.max() - field.min())
    return np.clip((field - 0.4) * 5, 0, 1)


def make_tree(root: Path, clips: dict[str, int], seed: int, fgr: bool = True) -> None:
    """Write ground truth under ``root/true`` and a perturbed prediction under ``root/pred``."""
    rng = np.random.default_rng(seed)
    for key, frames in clips.items():
        for t in range(frames):
            true = _matte(rng)
            pred = np.clip(true + gaussian_filter(rng.normal(0, 0.15, (H, W)), 1), 0, 1)
            name = f"{t:04d}.png"
            write_image(root / "true" / key / "pha" / name, true)
            write_image(root / "pred" / key / "pha" / name, pred)
            if fgr:
                colour = rng.random((H, W, 3))
                write_image(root / "true" / key / "fgr" / name, colour)
                write_image(
                    root / "pred" / key / "fgr" / name,
                    np.clip(colour + rng.normal(0, 0.05, colour.shape), 0, 1),
                )


def reference_clip_means(pred_dir: Path, true_dir: Path) -> dict[str, list[float]]:
    """Per-frame values the straightforward way: read each frame, score it, keep a list per metric."""
    frames = sorted(p.name for p in (true_dir / "pha").iterdir())
    values: dict[str, list[float]] = {m: [] for m in runner.ALL_METRICS}
    previous = None
    for i, name in enumerate(frames):
        true, pred = read_alpha(true_dir / "pha" / name), read_alpha(pred_dir / "pha" / name)
        values["pha_mad"].append(ref.mad(pred, true))
        values["pha_mse"].append(ref.mse(pred, true))
        values["pha_grad"].append(ref.grad(pred, true))
        values["pha_conn"].append(ref.conn(pred, true))
        values["pha_dtssd"].append(0.0 if i == 0 else ref.dtssd(pred, previous[0], true, previous[1]))
        previous = (pred, true)
        true_fgr, pred_fgr = read_rgb(true_dir / "fgr" / name), read_rgb(pred_dir / "fgr" / name)
        values["fgr_mad"].append(ref.fgr_mad(pred_fgr, true_fgr, true))
        values["fgr_mse"].append(ref.fgr_mse(pred_fgr, true_fgr, true))
    return values


CLIPS = {"motion/0000": 20, "motion/0001": 3, "static/0000": 5}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vm")
    make_tree(root, CLIPS, seed=0)
    return root


def test_means_per_clip_subset_and_overall_match_reference(tree):
    results = runner.evaluate_folders(tree / "pred", tree / "true", workers=1)
    assert results.metrics == runner.ALL_METRICS
    assert results.num_frames == sum(CLIPS.values())
    per_frame = {key: reference_clip_means(tree / "pred" / key, tree / "true" / key) for key in CLIPS}
    for key, values in per_frame.items():
        for metric, frames in values.items():
            assert math.isclose(results.clips[key][metric], np.mean(frames), rel_tol=1e-4, abs_tol=1e-6)
    for subset in ("motion", "static"):
        for metric in runner.ALL_METRICS:
            frames = [v for k, vs in per_frame.items() if k.startswith(subset) for v in vs[metric]]
            assert math.isclose(results.subsets[subset][metric], np.mean(frames), rel_tol=1e-4)
    for metric in runner.ALL_METRICS:
        frames = [v for vs in per_frame.values() for v in vs[metric]]
        assert math.isclose(results.overall[metric], np.mean(frames), rel_tol=1e-4)


def test_parallel_workers_give_the_same_numbers(tree):
    one = runner.evaluate_folders(tree / "pred", tree / "true", workers=1)
    two = runner.evaluate_folders(tree / "pred", tree / "true", workers=2)
    assert one.clips.keys() == two.clips.keys()
    for key in one.clips:
        for metric, value in one.clips[key].items():
            assert two.clips[key][metric] == pytest.approx(value, rel=1e-12)


def test_single_clip_folder_and_hr_protocol(tree, tmp_path):
    results = runner.evaluate_folders(tree / "pred/static/0000", tree / "true/static/0000", protocol="hr")
    assert list(results.clips) == ["."] and results.subsets == {}
    assert set(results.overall) == {"pha_mad", "pha_mse", "pha_grad", "pha_dtssd", "fgr_mse"}
    # Low-contrast mattes: the lr protocol stretches them to [0, 1] before Grad, the hr one does not.
    for side in ("pred", "true"):
        write_image(
            tmp_path / side / "pha/0000.png", read_alpha(tree / side / "static/0000/pha/0000.png") * 0.5
        )
    lr = runner.evaluate_folders(tmp_path / "pred", tmp_path / "true", metrics=["pha_grad"])
    hr = runner.evaluate_folders(tmp_path / "pred", tmp_path / "true", metrics=["pha_grad"], protocol="hr")
    assert hr.overall["pha_grad"] < 0.5 * lr.overall["pha_grad"]


def test_cli_writes_json_and_csv(tree, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    args = ["eval", "--pred", str(tree / "pred"), "--true", str(tree / "true"), "--metrics", "pha_mad"]
    args += ["pha_conn", "--json", str(out_json), "--csv", str(out_csv), "--workers", "1"]
    code = main(args)
    assert code == 0
    printed = capsys.readouterr().out
    assert "motion" in printed and "static" in printed and "overall" in printed
    data = json.loads(out_json.read_text())
    assert data["protocol"] == "lr"
    assert set(data["overall"]) == {"pha_mad", "pha_conn"}
    assert set(data["subsets"]) == {"motion", "static"}
    assert set(data["clips"]) == set(CLIPS)
    rows = out_csv.read_text().splitlines()
    assert rows[0] == "level,name,pha_mad,pha_conn"
    assert len(rows) == 1 + len(CLIPS) + 2 + 1


def test_foreground_metrics_are_skipped_when_prediction_has_none(tmp_path):
    make_tree(tmp_path, {"a/0000": 3}, seed=1, fgr=False)
    results = runner.evaluate_folders(tmp_path / "pred", tmp_path / "true", workers=1)
    assert "fgr_mse" not in results.overall and "pha_mad" in results.overall
    with pytest.raises(VidmatteError, match="fgr"):
        runner.evaluate_folders(tmp_path / "pred", tmp_path / "true", metrics=["fgr_mse"])


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value")
def test_frames_without_foreground_have_no_foreground_score(tmp_path):
    make_tree(tmp_path, {"c": 2}, seed=2)
    write_image(tmp_path / "true/c/pha/0000.png", np.zeros((H, W)))
    results = runner.evaluate_folders(tmp_path / "pred", tmp_path / "true", workers=1)
    only = reference_clip_means(tmp_path / "pred/c", tmp_path / "true/c")["fgr_mse"][1]
    assert results.overall["fgr_mse"] == pytest.approx(only, rel=1e-5)


# ------------------------------------------------------------------------------------ bad input
def _copy_tree(tmp_path: Path) -> Path:
    make_tree(tmp_path, {"s/0000": 4}, seed=3)
    return tmp_path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "pred/s/0000/pha/0002.png").unlink(), r"pred/s/0000/pha/0002.png: missing frame"),
        (lambda r: write_image(r / "pred/s/0000/pha/0009.png", np.zeros((H, W))), r"0009.png: extra frame"),
        (
            lambda r: write_image(r / "pred/s/0000/pha/0001.png", np.zeros((H + 1, W))),
            r"0001.png: size 32x25",
        ),
        (lambda r: (r / "pred/s/0000/pha/0003.png").write_text("not a png"), r"0003.png: unreadable image"),
        (lambda r: (r / "pred/s/0000/pha/0003.png").write_bytes(b""), r"0003.png: unreadable image"),
        (lambda r: write_image(r / "pred/s/0001/pha/0000.png", np.zeros((H, W))), r"pred/s/0001: extra clip"),
        (
            lambda r: write_image(r / "true/s/0001/pha/0000.png", np.zeros((H, W))),
            r"pred/s/0001/pha: missing",
        ),
    ],
)
def test_bad_input_names_the_file(tmp_path, damage, message):
    root = _copy_tree(tmp_path)
    damage(root)
    with pytest.raises(VidmatteError, match=message):
        runner.evaluate_folders(root / "pred", root / "true", workers=2)


def test_empty_and_same_and_vim_folders(tmp_path):
    root = _copy_tree(tmp_path)
    with pytest.raises(VidmatteError, match="same folder; every metric would be 0"):
        runner.evaluate_folders(root / "true", root / "true")
    (root / "empty").mkdir()
    with pytest.raises(VidmatteError, match="empty: no clip found"):
        runner.evaluate_folders(root / "pred", root / "empty")
    with pytest.raises(VidmatteError, match="nothere: no such folder"):
        runner.evaluate_folders(root / "nothere", root / "true")
    write_image(root / "vim/clip/pha/0/0000.png", np.zeros((H, W)))
    with pytest.raises(VidmatteError, match="VIM50 layout"):
        runner.evaluate_folders(root / "pred", root / "vim")


def test_cli_bad_input_is_one_line_nonzero_and_writes_nothing(tmp_path):
    root = _copy_tree(tmp_path)
    (root / "pred/s/0000/pha/0002.png").unlink()
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-m", "vidmatte.cli", "eval", "--pred", str(root / "pred"), "--true",
         str(root / "true"), "--json", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "0002.png: missing frame" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_work_for_a_single_segment_starts_no_worker_process(tmp_path, monkeypatch):
    make_tree(tmp_path, {"small/0000": 6}, seed=3)

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started for one segment of work")

    monkeypatch.setattr(runner, "ProcessPoolExecutor", no_pool)
    results = runner.evaluate_folders(tmp_path / "pred", tmp_path / "true", workers=4)
    assert results.num_frames == 6
