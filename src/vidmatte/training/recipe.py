"""The GPU recipe: the default weights' stages trained one after the other within a wall-time budget.

``make train-gpu`` (``vidmatte train-recipe``) runs the configs of ``configs/gpu/`` in order: AdaM's
alternating stage from ImageNet, AdaM's high-resolution stage (the guided filter) from it, and MSG-VIM.
Each stage gets its share of what is left of the budget. A short probe run measures the stage's
seconds per step on this machine, so that the learning-rate schedule spans the steps that fit; the
stage's ``time_limit`` stops it in time should it run slower. After each stage the held-out
validation figures are printed, and the weights of each model family are written to the output folder
in float16, ready for ``benchmarks/results.py`` and for shipping.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vidmatte.models.loading import save_weights
from vidmatte.training.config import TrainConfig, load_config
from vidmatte.training.trainer import Trainer

PROBE_STEPS = 6  # steps of a probe run; the first two (start-up, first batches) are not timed
SAFETY = 0.85  # of a stage's time spent on the steps the probe says fit


@dataclass(frozen=True)
class RecipeStage:
    """One stage of the recipe.

    Attributes:
        config: YAML file under the recipe's config folder.
        share: fraction of the budget left when the stage starts that it may use (the last takes all).
        after: the stage whose last checkpoint it starts from (``init``), if any.
        weights: file name of the float16 weights it leaves in the output folder.
    """

    config: str
    share: float
    after: str | None
    weights: str


STAGES = (
    RecipeStage("adam-1", 0.60, None, "adam-default.safetensors"),
    RecipeStage("adam-3", 0.35, "adam-1", "adam-default.safetensors"),
    RecipeStage("msgvim", 1.0, None, "msgvim-default.safetensors"),
)


def seconds_per_step(config: TrainConfig) -> float:
    """Time a few steps of ``config`` (in a throw-away folder) after its start-up."""
    with tempfile.TemporaryDirectory() as folder:
        probe = replace(
            config, out=folder, steps=PROBE_STEPS, save_every=10**9, validate_every=0, time_limit=None
        )
        trainer = Trainer(probe)
        trainer.config = replace(probe, steps=2)
        trainer.fit()
        start = time.monotonic()
        trainer.config = probe
        trainer.fit()
        return (time.monotonic() - start) / (PROBE_STEPS - 2)


def run_recipe(
    out: str | Path,
    budget: float,
    device: str = "auto",
    overrides: list[str] | None = None,
    configs: str | Path = "configs/gpu",
) -> dict[str, dict[str, float]]:
    """Train every stage of :data:`STAGES` within ``budget`` seconds of wall time.

    Args:
        out: folder of the stages' runs (``out/<stage>/``) and of the exported weights.
        budget: seconds for the whole recipe.
        device: ``auto``, ``cuda`` or ``cpu``.
        overrides: ``key=value`` settings applied to every stage (e.g. ``data.size=[64,64]`` for a test).
        configs: folder of the stages' YAML files.

    Returns:
        Each stage's validation figures (``loss``, ``mad``) and its ``steps``.
    """
    out = Path(out)
    deadline = time.monotonic() + budget
    results: dict[str, dict[str, float]] = {}
    last_weights: dict[str, Path] = {}
    for stage in STAGES:
        settings = [f"out={out / stage.config}", f"device={device}", *(overrides or [])]
        config = load_config(Path(configs) / f"{stage.config}.yaml", settings)
        if stage.after is not None:
            config = replace(config, init=str(last_weights[stage.after]))
        start = time.monotonic()
        allowed = stage.share * (deadline - start)
        per_step = seconds_per_step(config)
        left = allowed - (time.monotonic() - start)
        steps = max(1, int(SAFETY * left / per_step))
        warmup = min(config.optim.warmup_steps, steps // 10)
        config = replace(
            config,
            steps=steps,
            time_limit=left,
            save_every=steps,
            validate_every=0,
            optim=replace(config.optim, warmup_steps=warmup),
        )
        trainer = Trainer(config)
        trainer.fit()
        figures = {**trainer.validate(), "steps": float(trainer.step)}
        results[stage.config] = figures
        last_weights[stage.config] = trainer.store.latest().weights
        save_weights(trainer.model, out / stage.weights, config.model, dtype=torch.float16)
        print(
            f"{stage.config}: {trainer.step} steps of {config.model} in {time.monotonic() - start:.0f} s "
            f"({per_step:.2f} s/step), validation " + " ".join(f"{k} {v:.4f}" for k, v in figures.items()),
            flush=True,
        )
    return results
