"""Training runs end to end: kill and resume, torchrun with two processes, one process, loss sanity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from vidmatte import load_model
from vidmatte.errors import VidmatteError
from vidmatte.training.checkpoint import read_state
from vidmatte.training.config import OptimConfig, SourceConfig, TrainConfig, config_to_dict
from vidmatte.training.trainer import Trainer

TINY_CLIPS = SourceConfig(kind="synthetic", frames=2, size=(64, 64), augment=None)


def tiny_config(out: Path, **changes) -> TrainConfig:
    """adam-tiny on 64x64 synthetic clips of 2 frames, a checkpoint every 2 steps."""
    config = TrainConfig(
        model="adam-tiny",
        stage="adam-matting",
        out=str(out),
        steps=8,
        deterministic=True,
        data=TINY_CLIPS,
        optim=OptimConfig(lr=1e-3, warmup_steps=2, lr_multipliers={"encoder.backbone": 0.5}),
        save_every=2,
        keep_last=2,
        log_every=1,
    )
    return replace(config, **changes)


def write_config(config: TrainConfig, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config_to_dict(config)))
    return path


def single_thread_env() -> dict[str, str]:
    # one thread: fast on a shared CPU, and the same reduction order in every process
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_command(config_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vidmatte.cli", "train", "--config", str(config_path), *extra]


def final_weights(out: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(out / "checkpoints" / f"step-{step:08d}.safetensors")


def initial_weights(tmp_path: Path) -> dict[str, torch.Tensor]:
    """adam-tiny's weights before training (the same for every run with the config's seed)."""
    return Trainer(tiny_config(tmp_path / "unused", deterministic=False)).model.state_dict()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights_bitwise(tmp_path):
    steps = 8
    straight = write_config(tiny_config(tmp_path / "straight", steps=steps), tmp_path / "straight.yaml")
    killed = write_config(tiny_config(tmp_path / "killed", steps=steps), tmp_path / "killed.yaml")
    env = single_thread_env()
    uninterrupted = subprocess.Popen(
        train_command(straight), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    process = subprocess.Popen(
        train_command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first = tmp_path / "killed" / "checkpoints" / "step-00000002.state.pt"
    deadline = time.monotonic() + 240
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    checkpoints = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").glob("*.state.pt"))
    assert checkpoints and f"step-{steps:08d}.state.pt" not in checkpoints

    resumed = subprocess.run(
        train_command(killed, "--resume"), env=env, check=True, capture_output=True, text=True, timeout=300
    )
    assert "resumed at step" in resumed.stdout
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()
    expected, actual = final_weights(tmp_path / "straight", steps), final_weights(tmp_path / "killed", steps)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, f"{len(different)} tensors differ, first {different[0]}"
    initial = initial_weights(tmp_path)
    assert any(not torch.equal(initial[k], actual[k]) for k in actual)  # training did change the weights
    logged = [
        json.loads(line)["step"]
        for line in (tmp_path / "killed" / "train_log.jsonl").read_text().splitlines()
    ]
    assert logged == list(range(1, steps + 1))  # the log describes one continuous run


TORCHRUN_WORKER = """
import sys
from safetensors.torch import save_file
from vidmatte.training.config import load_config
from vidmatte.parallel.distributed import init_distributed, shutdown_distributed
from vidmatte.training.trainer import Trainer

context = init_distributed("cpu")
trainer = Trainer(load_config(sys.argv[1]), context)
trainer.fit()
weights = {k: v.contiguous() for k, v in trainer.model.state_dict().items()}
save_file(weights, f"{sys.argv[2]}/rank{context.rank}-of-{context.world_size}.safetensors")
shutdown_distributed(context)
"""


@pytest.mark.slow
def test_two_processes_under_torchrun_hold_identical_weights(tmp_path):
    config = tiny_config(tmp_path / "run", steps=3, save_every=10, deterministic=False, device="cpu")
    config = replace(config, data=replace(TINY_CLIPS, batch_size=1))
    config_path = write_config(config, tmp_path / "ddp.yaml")
    worker = tmp_path / "worker.py"
    worker.write_text(TORCHRUN_WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*command, str(worker), str(config_path), str(tmp_path)],
        env=single_thread_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (load_file(tmp_path / f"rank{r}-of-2.safetensors") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    saved = final_weights(tmp_path / "run", 3)  # rank 0 alone saved, the same weights
    assert all(torch.equal(saved[k], rank0[k]) for k in rank0)
    initial = initial_weights(tmp_path)
    assert any(not torch.equal(initial[k], rank0[k]) for k in rank0)
    logged = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3]  # one writer


def test_one_process_without_launcher_trains_and_saves_a_loadable_checkpoint(tmp_path, one_thread):
    config = tiny_config(
        tmp_path / "run",
        steps=2,
        deterministic=False,
        device="cpu",
        validation=replace(TINY_CLIPS, seed=99),
        validation_batches=1,
        validate_every=2,
    )
    trainer = Trainer(config)
    assert trainer.context.world_size == 1 and trainer.network is trainer.model
    summary = trainer.fit()
    assert set(summary) == {"loss", "mask", "coarse", "fine", "foreground"}
    assert all(torch.isfinite(torch.tensor(v)) for v in summary.values())
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 2] and 0 < log[-1]["val_mad"] < 1000
    assert trainer.validate() == {"loss": log[-1]["val_loss"], "mad": log[-1]["val_mad"]}  # the same clips
    weights = tmp_path / "run" / "checkpoints" / "step-00000002.safetensors"
    model = load_model(str(weights))  # the checkpoint records its model
    assert not model.training
    expected = trainer.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_validation_scores_every_person_whatever_the_training_subset(tmp_path, one_thread):
    from vidmatte.training.config import AdamStageConfig

    people = replace(TINY_CLIPS, instances=(2, 3), batch_size=2, seed=99)
    scores = []
    for subset in (0.0, 1.0):
        config = tiny_config(tmp_path / str(subset), validation=people, adam=AdamStageConfig(subset=subset))
        scores.append(Trainer(config).validate())
    assert scores[0] == scores[1] and scores[0]["mad"] > 0


def test_a_frozen_backbone_keeps_its_weights_and_batch_norm_statistics(tmp_path, one_thread):
    config = tiny_config(
        tmp_path / "run",
        steps=2,
        deterministic=False,
        freeze=("encoder.backbone",),
        optim=OptimConfig(lr=1e-3, warmup_steps=0),
        validation=replace(TINY_CLIPS, seed=99),
        validation_batches=1,
        validate_every=1,
    )
    trainer = Trainer(config)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen = {k for k in before if k.startswith("encoder.backbone.")}
    assert any(k.endswith("running_mean") for k in frozen)
    assert changed and not changed & frozen  # validation in between did not unfreeze its batch norms
    assert all(not p.requires_grad for p in trainer.model.encoder.backbone.parameters())
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in trainer.model.encoder.backbone.parameters()}
    with pytest.raises(VidmatteError, match=r"freeze: 'encoder\.backbon' names no module"):
        Trainer(replace(config, freeze=("encoder.backbon",)))


def test_checkpoints_hold_the_moving_average_and_a_resumed_run_continues_it_exactly(tmp_path, one_thread):
    config = tiny_config(tmp_path / "straight", steps=4, save_every=1, keep_last=4, ema=0.5)
    trainer = Trainer(config)
    previous = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    for step in range(1, 5):
        average = final_weights(tmp_path / "straight", step)
        raw = read_state(tmp_path / "straight" / "checkpoints" / f"step-{step:08d}.state.pt")["raw_weights"]
        floats = [k for k in average if average[k].is_floating_point()]
        assert all(torch.equal(average[k], previous[k].lerp(raw[k], 0.5)) for k in floats)
        assert any(not torch.equal(average[k], raw[k]) for k in floats)
        previous = average

    stopped = tiny_config(tmp_path / "resumed", steps=4, save_every=1, keep_last=4, ema=0.5, stop_at=2)
    Trainer(stopped).fit()
    resumed = Trainer(replace(stopped, stop_at=None))
    assert resumed.resume() == 2
    resumed.fit()
    expected, actual = final_weights(tmp_path / "straight", 4), final_weights(tmp_path / "resumed", 4)
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in resumed.model.state_dict().items())
    with pytest.raises(VidmatteError, match="with a moving average of the weights, and this run has none"):
        Trainer(replace(stopped, ema=None)).resume()
    with pytest.raises(ValueError, match="ema must be a decay between 0 and 1"):
        replace(config, ema=1.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "stage", "clips"),
    [
        ("adam-tiny", "adam-matting", TINY_CLIPS),
        ("msgvim-tiny", "msgvim", replace(TINY_CLIPS, instances=(2, 2))),
    ],
)
def test_loss_decreases_on_a_fixed_batch(tmp_path, one_thread, model, stage, clips):
    steps = 30
    config = tiny_config(
        tmp_path / "run",
        model=model,
        stage=stage,
        steps=steps,
        save_every=steps,
        deterministic=False,
        data=replace(clips, clips=1),  # the same clip at every step
        optim=OptimConfig(lr=3e-3, warmup_steps=0, final_lr_fraction=1.0),
    )
    Trainer(config).fit()
    losses = [
        json.loads(line)["loss"] for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    ]
    assert len(losses) == steps
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.7 * first, (first, last)


def test_alternating_stage_uses_matting_on_odd_and_segmentation_on_even_iterations(tmp_path, one_thread):
    config = tiny_config(
        tmp_path / "run",
        stage="adam-alternating",
        steps=4,
        deterministic=False,
        segmentation=replace(TINY_CLIPS, seed=5),
    )
    trainer = Trainer(config)
    trainer.fit()
    logged = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert ["fine" in r for r in logged] == [True, False, True, False]
    assert ["seg_mask" in r for r in logged] == [False, True, False, True]
    assert {name: s.position for name, s in trainer.streams.items()} == {"data": 2, "segmentation": 2}


def test_a_logged_record_averages_the_steps_since_the_previous_one(tmp_path, one_thread):
    def logged(log_every: int) -> list[dict]:
        out = tmp_path / f"every{log_every}"
        config = tiny_config(
            out,
            stage="adam-alternating",
            steps=4,
            log_every=log_every,
            segmentation=replace(TINY_CLIPS, seed=5),
        )
        Trainer(config).fit()
        return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]

    each, pairs = logged(1), logged(2)
    assert [r["step"] for r in pairs] == [2, 4]
    for record, (matting, segmentation) in zip(pairs, zip(each[::2], each[1::2], strict=True), strict=True):
        assert record["loss"] == pytest.approx((matting["loss"] + segmentation["loss"]) / 2, rel=1e-6)
        assert record["fine"] == pytest.approx(matting["fine"], rel=1e-6)  # a term of odd steps only
        assert record["seg_mask"] == pytest.approx(segmentation["seg_mask"], rel=1e-6)


# fp16's gradient scaler skips a first step whose scaled gradients overflow; the schedule still advances
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_train_on_cpu(tmp_path, one_thread, precision):
    config = tiny_config(tmp_path / "run", steps=1, deterministic=False, device="cpu", precision=precision)
    trainer = Trainer(config)
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    summary = trainer.fit()
    assert all(torch.isfinite(torch.tensor(v)) for v in summary.values())
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32


def test_a_run_stopped_early_saves_where_a_full_run_passed_with_the_same_schedule(tmp_path, one_thread):
    full = Trainer(tiny_config(tmp_path / "full", save_every=4))
    full.fit()
    early = Trainer(tiny_config(tmp_path / "early", save_every=100, stop_at=4))
    early.fit()
    assert early.step == 4 and [c.step for c in early.store.complete()] == [4]
    assert final_weights(tmp_path / "early", 4).keys() == final_weights(tmp_path / "full", 4).keys()
    for key, value in final_weights(tmp_path / "early", 4).items():
        assert torch.equal(value, final_weights(tmp_path / "full", 4)[key]), key  # lr of an 8-step run
    timed = Trainer(tiny_config(tmp_path / "timed", save_every=100, time_limit=0.0))
    timed.fit()
    assert timed.step == 1 and [c.step for c in timed.store.complete()] == [1]


@pytest.mark.slow
def test_the_gpu_recipe_trains_every_stage_within_a_minute_on_the_cpu(
    tmp_path, one_thread, capsys, monkeypatch, imagenet_checkpoint
):
    from vidmatte.training.recipe import STAGES, run_recipe

    monkeypatch.setenv("VIDMATTE_HOME", str(imagenet_checkpoint.parent))  # where 'imagenet' is looked for
    small = [
        "data.size=[64,64]",
        "data.batch_size=1",
        "data.workers=0",
        "data.frames=2",
    ]
    small += ["segmentation.size=[64,64]", "segmentation.batch_size=1", "segmentation.workers=0"]
    small += ["validation.size=[64,64]", "validation.batch_size=1", "validation_batches=1"]
    start = time.monotonic()
    results = run_recipe(tmp_path, budget=60, device="cpu", overrides=small)
    assert time.monotonic() - start < 75
    assert list(results) == [stage.config for stage in STAGES]
    for figures in results.values():
        assert figures["steps"] >= 1 and 0 <= figures["mad"] <= 1000 and figures["loss"] > 0
    adam, msgvim = (
        load_model(str(tmp_path / "adam-default.safetensors")),
        load_model(str(tmp_path / "msgvim-default.safetensors")),
    )
    assert adam.refiner.enabled  # the high-resolution stage trained the guided filter
    assert type(msgvim).__name__ == "MsgVim"
    printed = capsys.readouterr().out
    assert all(f"{stage.config}: " in printed and "validation loss" in printed for stage in STAGES)
