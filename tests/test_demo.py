"""`vidmatte demo` on a tiny clip, with the shipped default weights of both models."""

import json

import av
import numpy as np
import pytest

from vidmatte.cli import main
from vidmatte.io.frames import list_frames


@pytest.mark.slow
def test_demo_mattes_with_both_default_models_and_scores_them(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--frames", "3", "--size", "64x48"]) == 0
    printed = capsys.readouterr().out
    assert "pha_mad" in printed and "VIMQ_mse" in printed and str(out / "preview.mp4") in printed
    assert len(list_frames(out / "input")) == 3 and len(list_frames(out / "adam" / "pha")) == 3
    tracks = sorted(p.name for p in (out / "masks").iterdir())
    # one MSG-VIM alpha sequence per track of the simulated segmenter, 2-3 people in the ground truth
    assert sorted(p.name for p in (out / "msgvim" / "alpha").iterdir()) == tracks
    assert 2 <= len(list((out / "truth" / "instances" / "pha").iterdir())) <= 3
    with av.open(str(out / "preview.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (3 * 64, 48)
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"pha_mad", "pha_mse", "pha_grad", "pha_conn", "pha_dtssd"} == set(metrics["adam"])
    assert {"RQ", "TQ", "VIMQ_mse", "VIMQ_mad", "VIMQ_dtssd"} <= set(metrics["msgvim"])
    assert all(np.isfinite(v) for part in metrics.values() for v in part.values())
    # a second run replaces the first one's files instead of mixing with them
    assert main(["demo", "--out", str(out), "--frames", "2", "--size", "64x48"]) == 0
    assert len(list_frames(out / "truth" / "adam" / "pha")) == 2
