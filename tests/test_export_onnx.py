"""ONNX export of AdaM and MSG-VIM, checked against PyTorch; the onnxruntime backend."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from vidmatte import build_model
from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.export import onnx as export
from vidmatte.inference.adam import AdamSession
from vidmatte.inference.engine import EngineSettings, load_engine
from vidmatte.inference.msgvim import MsgVimSession
from vidmatte.inference.onnx_backend import OnnxAdam, OnnxMsgVim, open_onnx
from vidmatte.models.loading import save_weights

pytestmark = pytest.mark.export
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def adam():
    torch.manual_seed(0)
    return build_model("adam-tiny").eval()


@pytest.fixture(scope="module")
def msgvim():
    torch.manual_seed(1)
    return build_model("msgvim-tiny").eval()


@pytest.fixture(scope="module")
def adam_onnx(adam) -> bytes:
    return export.export_bytes(adam)


@pytest.fixture(scope="module")
def msgvim_onnx(msgvim) -> bytes:
    return export.export_bytes(msgvim)


def largest_difference(graph, session, inputs) -> float:
    names = [i.name for i in session.get_inputs()]
    with torch.no_grad():
        expected = graph(*inputs)
    got = session.run(None, {name: x.numpy() for name, x in zip(names, inputs, strict=True)})
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == tuple(e.shape)
    return max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected, strict=True) if e.numel())


@pytest.mark.parametrize(
    ("size", "low", "entries"),
    [((96, 128), (48, 64), 1), ((96, 128), (48, 64), 3), ((37, 50), (37, 50), 1), ((37, 50), (37, 50), 4)],
)
def test_adam_step_matches_pytorch_at_sizes_and_memory_lengths_not_exported(
    adam, adam_onnx, size, low, entries
):
    session = export.onnx_session(adam_onnx)
    inputs = export.adam_inputs(adam, *size, *low, entries, seed=entries)
    assert largest_difference(export.AdamStepGraph(adam), session, inputs) <= TOLERANCE


@pytest.mark.parametrize(("size", "carry"), [((32, 64), 0.0), ((96, 32), 1.0)])
def test_msgvim_step_matches_pytorch_at_sizes_not_exported(msgvim, msgvim_onnx, size, carry):
    session = export.onnx_session(msgvim_onnx)
    inputs = export.msgvim_inputs(msgvim, *size, carry)
    assert largest_difference(export.MsgVimStepGraph(msgvim), session, inputs) <= TOLERANCE


@pytest.mark.parametrize(("ratio", "with_mask"), [(None, False), (0.5, True)])
def test_adam_onnx_session_equals_the_torch_session(adam, adam_onnx, ratio, with_mask):
    assert_sessions_equal(adam, adam_onnx, ratio, with_mask)


def test_a_pooled_memory_exports_and_runs_like_torch():
    torch.manual_seed(2)
    pooled = build_model("adam-tiny", memory_pool=2).eval()  # 45x70 frames: 3x5 tokens, pooled to 2x3
    assert_sessions_equal(pooled, export.export_bytes(pooled), None, True)


def assert_sessions_equal(adam, adam_onnx: bytes, ratio: float | None, with_mask: bool) -> None:
    """An AdaM session on the exported graph mattes 7 frames as the torch session does."""
    generator = torch.Generator().manual_seed(3)
    clip = torch.rand(7, 3, 45, 70, generator=generator)
    mask = (torch.rand(45, 70, generator=generator) > 0.5).numpy() if with_mask else None
    runner = open_onnx(adam_onnx)
    assert isinstance(runner, OnnxAdam)
    torch_session = AdamSession(adam, first_mask=mask, downsample_ratio=ratio)
    onnx_session = AdamSession(runner, first_mask=mask, downsample_ratio=ratio)
    for frame in clip:
        (alpha, foreground), (onnx_alpha, onnx_foreground) = (
            torch_session.step(frame),
            onnx_session.step(frame),
        )
        assert onnx_alpha.shape == (1, 1, 45, 70) and onnx_foreground.shape == (1, 3, 45, 70)
        torch.testing.assert_close(onnx_alpha, alpha, atol=TOLERANCE, rtol=0)
        torch.testing.assert_close(onnx_foreground, foreground, atol=TOLERANCE, rtol=0)
    assert len(onnx_session.memory) == len(torch_session.memory) == 1 + adam.memory_capacity


def test_msgvim_onnx_session_equals_the_torch_session_across_chunks(msgvim, msgvim_onnx):
    rng = np.random.default_rng(0)
    rgb = rng.random((5, 30, 44, 3), dtype=np.float32)
    targets, references = rng.random((2, 2, 5, 30, 44)) > 0.5
    runner = open_onnx(msgvim_onnx)
    assert isinstance(runner, OnnxMsgVim)
    for carry in (False, True):
        torch_session, onnx_session = MsgVimSession(msgvim, carry), MsgVimSession(runner, carry)
        for chunk in (slice(0, 3), slice(3, 5)):
            expected = torch_session(rgb[chunk], targets[:, chunk], references[:, chunk])
            got = onnx_session(rgb[chunk], targets[:, chunk], references[:, chunk])
            assert got.shape == (2, chunk.stop - chunk.start, 30, 44)
            np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def test_verification_refuses_an_export_of_other_weights(adam, adam_onnx, tmp_path, monkeypatch):
    changed = copy.deepcopy(adam)
    with torch.no_grad():
        changed.decoder.fine_head.bias.add_(0.5)
    monkeypatch.setattr(export, "export_bytes", lambda model, opset: adam_onnx)
    out = tmp_path / "adam.onnx"
    with pytest.raises(VidmatteError, match="differs from PyTorch"):
        export.export_onnx(changed, out)
    assert list(tmp_path.iterdir()) == []
    assert export.export_onnx(adam, out) <= TOLERANCE
    assert [p.name for p in tmp_path.iterdir()] == ["adam.onnx"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory, adam, msgvim) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    return {
        "adam": save_weights(adam, folder / "adam.safetensors", "adam-tiny"),
        "msgvim": save_weights(msgvim, folder / "msgvim.safetensors", "msgvim-tiny"),
    }


@pytest.mark.slow
def test_cli_writes_a_verified_file_that_the_matte_backend_runs(tmp_path, weights, capsys):
    out = tmp_path / "msgvim.onnx"
    assert (
        main(
            ["export", "onnx", "--model", "msgvim", "--checkpoint", str(weights["msgvim"]), "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "max abs difference from PyTorch" in printed and float(printed.split()[-1]) <= TOLERANCE
    assert [p.name for p in tmp_path.iterdir()] == ["msgvim.onnx"]
    engine = load_engine(EngineSettings("msgvim", out), "onnxruntime")
    chunks = engine.msgvim_chunks()
    alphas = chunks(
        np.zeros((2, 32, 32, 3), np.float32), np.ones((1, 2, 32, 32), bool), np.zeros((1, 2, 32, 32), bool)
    )
    assert alphas.shape == (1, 2, 32, 32) and np.all((alphas >= 0) & (alphas <= 1))
    with pytest.raises(VidmatteError, match="an ONNX export of msgvim, not of adam"):
        load_engine(EngineSettings("adam", out), "onnxruntime")


def test_cli_gives_one_line_for_a_wrong_checkpoint(tmp_path, weights, capsys):
    out = tmp_path / "adam.onnx"
    assert (
        main(["export", "onnx", "--model", "adam", "--checkpoint", str(weights["msgvim"]), "--out", str(out)])
        == 2
    )
    error = capsys.readouterr().err
    assert error.startswith("vidmatte: error: ") and str(weights["msgvim"]) in error
    assert error.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("opset", [13, 99])
def test_cli_gives_one_line_for_an_opset_it_cannot_export(tmp_path, weights, capsys, opset):
    out = tmp_path / "adam.onnx"
    arguments = ["export", "onnx", "--model", "adam", "--checkpoint", str(weights["adam"]), "--out", str(out)]
    assert main([*arguments, "--opset", str(opset)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"vidmatte: error: opset {opset}: ") and error.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_onnx_backend_refuses_what_it_cannot_run(tmp_path):
    with pytest.raises(VidmatteError, match="runs fp32, not bf16"):
        load_engine(EngineSettings("adam", precision="bf16"), "onnxruntime")
    with pytest.raises(VidmatteError, match="CPU"):
        load_engine(EngineSettings("adam", device="cuda"), "onnxruntime")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(VidmatteError, match=f"{bogus}: not a readable ONNX model"):
        load_engine(EngineSettings("adam", bogus), "onnxruntime")
    with pytest.raises(
        VidmatteError, match=r"^unknown backend 'tflite'; expected one of torch, onnxruntime$"
    ):
        load_engine(EngineSettings("adam"), "tflite")


@pytest.mark.slow
def test_matte_video_with_the_onnxruntime_backend_equals_torch(tmp_path, weights):
    from vidmatte.inference.video import matte_video
    from vidmatte.io.frames import read_grey_u8, write_image

    frames = tmp_path / "frames"
    rng = np.random.default_rng(0)
    for index in range(4):
        write_image(frames / f"{index:04d}.png", rng.integers(0, 256, (41, 58, 3), dtype=np.uint8))
    outputs = {}
    for backend in ("torch", "onnxruntime"):
        # the onnxruntime backend exports the safetensors weights on loading
        matte_video(
            frames,
            tmp_path / backend,
            checkpoint=weights["adam"],
            outputs=["alpha"],
            format="png",
            backend=backend,
        )
        outputs[backend] = [read_grey_u8(p) for p in sorted((tmp_path / backend).rglob("*.png"))]
    assert len(outputs["torch"]) == len(outputs["onnxruntime"]) == 4
    for expected, got in zip(outputs["torch"], outputs["onnxruntime"], strict=True):
        assert np.abs(expected.astype(int) - got.astype(int)).max() <= 1
