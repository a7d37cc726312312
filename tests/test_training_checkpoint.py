"""Checkpoints: atomic store with the last K kept, strict weight checks, pickles refused unexecuted."""

from __future__ import annotations

import pathlib
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from vidmatte import build_model, load_model
from vidmatte.errors import VidmatteError
from vidmatte.models.loading import MODEL_KEY, load_weights_into, save_weights
from vidmatte.training.checkpoint import CheckpointStore, find_checkpoint, read_state
from vidmatte.training.config import SourceConfig, TrainConfig
from vidmatte.training.trainer import Trainer


def saved_adam_tiny(tmp_path: pathlib.Path) -> pathlib.Path:
    return save_weights(build_model("adam-tiny"), tmp_path / "adam.safetensors", "adam-tiny")


def test_store_keeps_the_last_k_complete_checkpoints_and_ignores_partial_ones(tmp_path):
    store = CheckpointStore(tmp_path / "ckpt", keep_last=2)
    weights = {"w": torch.arange(4.0)}
    for step in (1, 2, 3):
        store.save(step, {"w": weights["w"] * step}, {"step": step}, {MODEL_KEY: "x"})
    assert [c.step for c in store.complete()] == [2, 3]
    assert not list((tmp_path / "ckpt").glob("step-00000001*"))
    # a process killed while writing step 4 leaves temporary files or weights without state
    (tmp_path / "ckpt" / "step-00000004.safetensors").write_bytes(b"half")
    (tmp_path / "ckpt" / "step-00000004.state.pt.tmp").write_bytes(b"half")
    latest = store.latest()
    assert latest.step == 3
    assert torch.equal(load_file(latest.weights)["w"], weights["w"] * 3)
    assert read_state(latest.state) == {"step": 3}
    assert find_checkpoint(latest.weights) == latest
    with pytest.raises(VidmatteError, match="missing half"):
        find_checkpoint(tmp_path / "ckpt" / "step-00000004.safetensors")


def test_weights_of_another_model_are_refused(tmp_path):
    path = saved_adam_tiny(tmp_path)
    with pytest.raises(VidmatteError, match=r"adam\.safetensors: weights of adam-tiny, not of msgvim-tiny"):
        load_weights_into(build_model("msgvim-tiny"), path, expected_model="msgvim-tiny")
    # without the recorded name, the key check alone refuses them
    with pytest.raises(VidmatteError, match=r"adam\.safetensors: weights do not fit MsgVim: \d+ missing"):
        load_weights_into(build_model("msgvim-tiny"), path)


def test_resuming_a_run_of_another_model_is_refused(tmp_path):
    clips = SourceConfig(kind="synthetic", frames=2, size=(32, 32), augment=None)
    config = TrainConfig(model="adam-tiny", out=str(tmp_path / "run"), steps=1, data=clips, device="cpu")
    Trainer(config).save()
    other = replace(config, model="msgvim-tiny", stage="msgvim")
    with pytest.raises(
        VidmatteError, match=r"step-00000000\.state\.pt: training state of adam-tiny, not of msgvim"
    ):
        Trainer(other).resume()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("encoder.reduce.weight"), r"1 missing \(first: encoder\.reduce\.weight\)"),
        (lambda s: s.update(extra=torch.zeros(1)), r"1 unexpected \(first: extra\)"),
        (lambda s: s.update({"embedding.foreground": torch.zeros(3)}), r"1 of another shape"),
        (
            lambda s: s["encoder.reduce.weight"].view(-1)[0].fill_(float("nan")),
            r"non-finite values in encoder\.reduce",
        ),
    ],
    ids=["missing", "extra", "shape", "nan"],
)
def test_mismatched_or_non_finite_weights_are_refused_with_one_line(tmp_path, change, message):
    state = dict(build_model("adam-tiny").state_dict())
    state = {k: v.clone() for k, v in state.items()}
    change(state)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path), metadata={MODEL_KEY: "adam-tiny"})
    with pytest.raises(VidmatteError, match=message) as error:
        load_model(str(path))
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


class Payload:
    """Unpickling this object touches a file: code that a weights file must never run."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_a_pickle_with_a_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    torch.save({"encoder.reduce.weight": torch.zeros(1), "x": Payload(marker)}, path)
    with pytest.raises(VidmatteError, match=r"evil\.pt: refused, not a plain tensor file"):
        load_model(str(path), model="adam-tiny")
    with pytest.raises(VidmatteError, match=r"evil\.pt: not a readable training state"):
        read_state(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: an unsafe load does run it
    assert marker.exists()


def test_plain_tensor_pickles_and_half_precision_safetensors_load(tmp_path):
    model = build_model("adam-tiny")
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    loaded = load_model(str(tmp_path / "plain.pt"), model="adam-tiny")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    save_weights(model, tmp_path / "half.safetensors", "adam-tiny", dtype=torch.float16)
    half = load_model(str(tmp_path / "half.safetensors"))
    weight = half.state_dict()["encoder.reduce.weight"]
    assert weight.dtype == torch.float32
    assert torch.equal(weight, model.state_dict()["encoder.reduce.weight"].half().float())
    with pytest.raises(VidmatteError, match="does not say which model"):
        load_model(str(tmp_path / "plain.pt"))
