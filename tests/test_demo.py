"""`vidmatte demo` on a tiny configuration: it writes a benchmark, a prediction and prints the table."""

import json

from vidmatte.cli import main


def test_demo_writes_benchmark_and_scores_it(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--clips", "1", "--frames", "3", "--size", "48x32"]) == 0
    printed = capsys.readouterr().out
    assert "pha_mad" in printed and "overall" in printed
    assert len(list(out.glob("true/*/0000/pha/*.png"))) == 3
    assert len(list(out.glob("pred/*/0000/fgr/*.png"))) == 3
    metrics = json.loads((out / "metrics.json").read_text())["overall"]
    # The prediction is degraded on purpose: every error is positive.
    assert all(value > 0 for value in metrics.values()) and len(metrics) == 7
