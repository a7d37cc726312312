"""Conversion of reference MSG-VIM checkpoints (MGMatting-style names) to msgvim-r34."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.models.loading import load_model
from vidmatte.models.msgvim.convert import convert_reference_state_dict, read_reference_checkpoint
from vidmatte.models.msgvim.factory import msgvim_r34

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _reference_keys() -> list[str]:
    """The state-dict keys of the reference network, enumerated from its structure (VIM repository)."""
    keys: list[str] = []

    def sn(path: str) -> None:
        keys.extend(f"{path}.module.weight_{s}" for s in ("bar", "u", "v"))

    def bn(path: str) -> None:
        keys.extend(f"{path}.{s}" for s in BN)

    for conv, norm in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")):
        sn(f"encoder.{conv}")
        bn(f"encoder.{norm}")
    stages = (("layer1", 3, False), ("layer2", 4, True), ("layer3", 4, True), ("layer_bottleneck", 2, True))
    for layer, blocks, strided in stages:
        for i in range(blocks):
            for conv, norm in (("conv1", "bn1"), ("conv2", "bn2")):
                sn(f"encoder.{layer}.{i}.{conv}")
                bn(f"encoder.{layer}.{i}.{norm}")
            if i == 0 and strided:
                sn(f"encoder.{layer}.0.downsample.1")
                bn(f"encoder.{layer}.0.downsample.2")
    for k in range(5):
        sn(f"encoder.shortcut.{k}.0")
        bn(f"encoder.shortcut.{k}.2")
        sn(f"encoder.shortcut.{k}.3")
        bn(f"encoder.shortcut.{k}.5")
    for name in ("aspp1", "aspp2", "aspp3", "aspp4", "aspp5", "conv2"):
        keys.append(f"aspp.{name}.weight")
    for name in ("aspp1_bn", "aspp2_bn", "aspp3_bn", "aspp4_bn", "aspp5_bn", "bn2"):
        bn(f"aspp.{name}")
    for layer, blocks in (("layer1", 2), ("layer2", 3), ("layer3", 3), ("layer4", 2)):
        for i in range(blocks):
            for conv, norm in (("conv1", "bn1"), ("conv2", "bn2")):
                sn(f"decoder.{layer}.{i}.{conv}")
                bn(f"decoder.{layer}.{i}.{norm}")
        sn(f"decoder.{layer}.0.upsample.1")
        bn(f"decoder.{layer}.0.upsample.2")
    keys += [f"decoder.layer4.0.tmp_network.{c}.{p}" for c in ("ih", "hh") for p in ("weight", "bias")]
    sn("decoder.conv1")
    bn("decoder.bn1")
    for head in ("refine_OS1", "refine_OS4", "refine_OS8"):
        keys += [f"decoder.{head}.0.weight", f"decoder.{head}.3.weight", f"decoder.{head}.3.bias"]
        bn(f"decoder.{head}.1")
    return keys


def test_every_reference_key_maps_onto_msgvim_r34_and_back():
    ours = msgvim_r34().state_dict()
    keys = _reference_keys()
    converted = convert_reference_state_dict({k: torch.zeros(0) for k in keys})
    assert len(converted) == len(keys)
    assert set(converted) == set(ours)


def test_spectral_norm_and_module_prefix(tmp_path: Path):
    ours = msgvim_r34().state_dict()
    names = {
        "module.encoder.conv1.module.weight_bar": "encoder.backbone.stem.0.parametrizations.weight.original",
        "module.encoder.layer2.0.downsample.1.module.weight_u": (
            "encoder.backbone.stages.1.0.shortcut.1.parametrizations.weight.0._u"
        ),
        "module.decoder.layer4.0.tmp_network.hh.bias": "decoder.stages.3.0.temporal.hidden_to_hidden.bias",
        "module.decoder.conv1.module.weight_v": "decoder.to_full.0.parametrizations.weight.0._v",
        "module.aspp.aspp5_bn.running_var": "aspp.pooling.1.running_var",
    }
    state = {ref: torch.rand(ours[name].shape) for ref, name in names.items()}
    path = tmp_path / "reference.pth"
    torch.save({"state_dict": state, "iteration": 20000}, path)
    converted = read_reference_checkpoint(path)
    for ref, name in names.items():
        assert torch.equal(converted[name], state[ref])


@pytest.mark.slow
def test_a_full_checkpoint_converts_through_the_cli(tmp_path: Path, capsys):
    model = msgvim_r34()
    ours = model.state_dict()
    keys = _reference_keys()
    by_name = dict(zip(convert_reference_state_dict({k: torch.zeros(0) for k in keys}), keys, strict=True))
    state = {by_name[name]: torch.randn(t.shape) if t.is_floating_point() else t for name, t in ours.items()}
    source, target = tmp_path / "msgvim.pth", tmp_path / "msgvim-r34.safetensors"
    torch.save({"state_dict": state}, source)
    assert main(["convert-msgvim", "--checkpoint", str(source), "--out", str(target)]) == 0
    loaded = load_model(target).state_dict()  # the file records msgvim-r34
    key = "decoder.stages.3.0.temporal.input_to_hidden.weight"
    assert torch.equal(loaded[key], state["decoder.layer4.0.tmp_network.ih.weight"])
    del state["decoder.bn1.running_mean"]
    torch.save({"state_dict": state}, source)
    assert main(["convert-msgvim", "--checkpoint", str(source), "--out", str(target)]) == 2
    assert "msgvim.pth: weights do not fit MsgVim: 1 missing (first: decoder.to_full.1.running_mean)" in (
        capsys.readouterr().err
    )


def test_unknown_keys_and_unreadable_files(tmp_path: Path):
    with pytest.raises(VidmatteError, match=r"decoder\.refine_OS2\.0\.weight: not a parameter"):
        convert_reference_state_dict({"decoder.refine_OS2.0.weight": torch.zeros(1)})
    (tmp_path / "bad.pth").write_text("not a checkpoint")
    with pytest.raises(VidmatteError, match=r"bad\.pth: refused, not a plain tensor file"):
        read_reference_checkpoint(tmp_path / "bad.pth")
