"""The default precision: bfloat16 only where the CPU computes bfloat16 natively."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidmatte.errors import VidmatteError
from vidmatte.inference import precision
from vidmatte.inference.engine import EngineSettings, load_engine

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, False, True), (False, True, True), (False, False, False)],
)
def test_native_bf16_follows_the_cpu_probes(monkeypatch, avx512_bf16: bool, amx: bool, expected: bool):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert precision.cpu_has_native_bf16() is expected


def test_a_torch_without_the_probes_is_taken_to_emulate_bf16(monkeypatch):
    for probe in precision._NATIVE_BF16_PROBES:
        monkeypatch.delattr(torch.cpu, probe, raising=False)
    assert precision.cpu_has_native_bf16() is False


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_on_a_native_cpu_only(monkeypatch, native: bool):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.auto_precision(CPU) == ("bf16" if native else "fp32")
    assert precision.auto_precision(torch.device("cuda")) == "fp32"


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("model", ["adam", "msgvim"])
def test_the_torch_engine_resolves_auto_on_loading(
    monkeypatch, tiny_weights: dict[str, Path], model: str, native: bool
):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    engine = load_engine(EngineSettings(model, tiny_weights[model]))
    assert engine.settings.precision == ("bf16" if native else "fp32")
    explicit = load_engine(EngineSettings(model, tiny_weights[model], precision="fp32"))
    assert explicit.settings.precision == "fp32"


def test_msgvim_chunks_in_bf16_are_float32_near_fp32(tiny_weights: dict[str, Path]):
    rng = np.random.default_rng(0)
    rgb = rng.random((3, 40, 56, 3), dtype=np.float32)
    targets = np.zeros((2, 3, 40, 56), bool)
    targets[0, :, :, :28], targets[1, :, :, 28:] = True, True
    alphas = {
        p: load_engine(EngineSettings("msgvim", tiny_weights["msgvim"], precision=p)).msgvim_chunks()(
            rgb, targets, targets[::-1]
        )
        for p in ("fp32", "bf16")
    }
    assert alphas["bf16"].dtype == np.float32 and alphas["bf16"].shape == (2, 3, 40, 56)
    assert not np.array_equal(alphas["bf16"], alphas["fp32"])  # the network did run in bfloat16
    np.testing.assert_allclose(alphas["bf16"], alphas["fp32"], atol=0.05)


def test_auto_is_the_default_and_other_names_are_refused():
    assert EngineSettings().precision == "auto"
    with pytest.raises(VidmatteError, match="unknown precision 'bfloat16'; expected one of fp32"):
        EngineSettings(precision="bfloat16")


def test_the_matte_command_defaults_to_auto():
    from vidmatte.cli import build_parser

    args = build_parser().parse_args(["matte", "in.mp4", "--out", "out/"])
    assert args.precision == "auto"


def test_onnxruntime_resolves_auto_to_float32(monkeypatch, tiny_weights: dict[str, Path]):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    engine = load_engine(EngineSettings("adam", tiny_weights["adam"]), "onnxruntime")
    assert engine.settings.precision == "fp32"
