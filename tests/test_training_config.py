"""Training configuration: YAML into typed dataclasses, overrides, clear errors, the shipped configs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from vidmatte.cli import main
from vidmatte.data.guidance import MaskAugment
from vidmatte.errors import VidmatteError
from vidmatte.models.registry import available_models, build_model
from vidmatte.training.config import OptimConfig, TrainConfig, load_config
from vidmatte.training.trainer import WarmupCosine, parameter_groups

CONFIG_FOLDER = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_FOLDER.rglob("*.yaml"))  # the GPU recipe's configs/gpu/ too


@pytest.mark.parametrize("path", CONFIGS, ids=[p.relative_to(CONFIG_FOLDER).as_posix() for p in CONFIGS])
def test_shipped_configs_load_and_name_known_models(path):
    config = load_config(path)
    assert isinstance(config, TrainConfig)
    assert config.model in available_models()
    if config.model.startswith("msgvim"):
        assert config.stage == "msgvim" and config.data.frames >= 5
        assert config.data.mask_augment is not None and config.data.instances[1] >= 2


@pytest.mark.parametrize("name", available_models())
def test_every_registered_name_builds_its_network(name):
    from vidmatte.models.adam.model import AdamModel
    from vidmatte.models.msgvim.model import MsgVim

    assert isinstance(build_model(name), AdamModel if name.startswith("adam-") else MsgVim)


def test_an_unknown_model_name_is_a_one_line_error():
    known = r"^unknown model 'rvm'; known: adam-fast, adam-mnv2, adam-mnv2-mask-only, "
    with pytest.raises(VidmatteError, match=known):
        build_model("rvm")


def test_configs_cover_every_stage_on_real_and_synthetic_data():
    stages = {(load_config(p).stage, load_config(p).data.kind) for p in CONFIGS}
    assert {
        ("adam-segmentation", "ytvis"),
        ("adam-alternating", "videomatte"),
        ("adam-matting", "videomatte"),
    } <= stages
    assert {("msgvim", "instances"), ("adam-matting", "synthetic"), ("msgvim", "synthetic")} <= stages


def test_yaml_and_overrides_become_typed_values(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: msgvim-tiny\nstage: msgvim\ndata: {kind: synthetic, size: [32, 48]}\n")
    config = load_config(
        path,
        [
            "steps=7",
            "optim.lr=3e-4",
            "data.instances=[2,3]",
            "data.mask_augment={erase: 0.5}",
            "optim.lr_multipliers={encoder.backbone: 0.1}",
        ],
    )
    assert config.steps == 7 and config.optim.lr == pytest.approx(3e-4)
    assert config.data.size == (32, 48) and config.data.instances == (2, 3)
    assert config.data.mask_augment == MaskAugment(erase=0.5)
    assert config.optim.lr_multipliers == {"encoder.backbone": 0.1}


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("stepz: 3\n", [], "unknown setting stepz"),
        ("optim: {lrr: 1.0}\n", [], r"unknown setting optim\.lrr"),
        ("steps: many\n", [], "steps: expected int"),
        ("data: {size: [1, 2, 3]}\n", [], r"data\.size: expected 2 values"),
        ("stage: stage9\n", [], "stage must be one of"),
        ("steps: 3\n", ["steps"], "is not key=value"),
        ("- a list\n", [], "expected a mapping"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_file(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(VidmatteError, match=message) as error:
        load_config(path, overrides)
    assert str(error.value).startswith(str(path))


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("stepz: 3\n")
    assert main(["train", "--config", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"vidmatte: error: {path}: unknown setting stepz")


def test_per_module_learning_rates_and_warmup_cosine_schedule():
    model = build_model("adam-tiny")
    groups = parameter_groups(
        model, OptimConfig(lr=1e-3, lr_multipliers={"encoder.backbone": 0.1, "encoder": 0.5})
    )
    lrs = {id(p): g["lr"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    backbone = next(n for n in named if n.startswith("encoder.backbone."))
    reduce = next(n for n in named if n.startswith("encoder.reduce."))
    decoder = next(n for n in named if n.startswith("decoder."))
    assert lrs[id(named[backbone])] == pytest.approx(1e-4)  # the longest prefix wins
    assert lrs[id(named[reduce])] == pytest.approx(5e-4)
    assert lrs[id(named[decoder])] == pytest.approx(1e-3)
    assert sum(len(g["params"]) for g in groups) == len(named)
    with pytest.raises(VidmatteError, match=r"'encoder\.backbon' names no trainable parameter"):
        parameter_groups(model, OptimConfig(lr_multipliers={"encoder.backbon": 0.1}))

    schedule = WarmupCosine(warmup=4, total=14, final=0.1)
    factors = [schedule(step) for step in range(14)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(factors[4:]))
    assert torch.tensor(factors).min() >= 0.1
