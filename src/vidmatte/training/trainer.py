"""The training loop: :class:`Trainer` with ``fit``, ``validate``, ``save`` and ``resume``.

One process without a launcher, or one process per device under ``torchrun``
(DistributedDataParallel); rank 0 alone logs and saves. Every random number of a run derives from
``config.seed`` and the data position is the number of batches consumed per stream, so a run
resumed from a checkpoint continues exactly as if it had never stopped (bitwise on CPU with
``deterministic: true``).
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vidmatte.errors import VidmatteError
from vidmatte.models.backbones.imagenet import load_imagenet_mobilenetv2
from vidmatte.models.backbones.mobilenetv2 import MobileNetV2
from vidmatte.models.loading import MODEL_KEY, load_weights_into
from vidmatte.models.precision import Precision, PrecisionSetting, autocast_dtype
from vidmatte.models.registry import build_model
from vidmatte.parallel.distributed import (
    DistributedContext,
    barrier,
    broadcast_buffers,
    gather_objects,
    init_distributed,
    mean_over_ranks,
    shutdown_distributed,
)
from vidmatte.segmentation.movenet_backbone import MOVENET, calibration_images, load_movenet_mobilenetv2
from vidmatte.training.batches import Batch, BatchStream
from vidmatte.training.checkpoint import Checkpoint, CheckpointStore, find_checkpoint, read_state
from vidmatte.training.config import OptimConfig, TrainConfig, config_to_dict
from vidmatte.training.progress import ProgressReporter
from vidmatte.training.stages import MODEL_FAMILIES, SCHEDULES, StepResult, iteration_plan

ALPHA_SCALE = 1e3  # validation MAD is reported x 1e3, as the benchmarks do


class WarmupCosine:
    """Learning-rate factor: linear warm-up for ``warmup`` steps, cosine decay to ``final`` at ``total``.

    A callable object (not a lambda) so that ``LambdaLR`` saves it in its state dict.
    """

    def __init__(self, warmup: int, total: int, final: float) -> None:
        self.warmup, self.total, self.final = warmup, total, final

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup - 1))
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))


def parameter_groups(model: nn.Module, optim: OptimConfig) -> list[dict[str, Any]]:
    """Adam parameter groups with per-module learning rates (the longest matching prefix wins).

    Raises:
        VidmatteError: a prefix in ``optim.lr_multipliers`` that names no trainable parameter.
    """
    groups: dict[float, list[nn.Parameter]] = {}
    used = set()
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        prefixes = [p for p in optim.lr_multipliers if name == p or name.startswith(p + ".")]
        factor = 1.0
        if prefixes:
            prefix = max(prefixes, key=len)
            used.add(prefix)
            factor = optim.lr_multipliers[prefix]
        groups.setdefault(factor, []).append(parameter)
    unused = sorted(set(optim.lr_multipliers) - used)
    if unused:
        raise VidmatteError(f"optim.lr_multipliers: {unused[0]!r} names no trainable parameter of the model")
    return [{"params": params, "lr": optim.lr * factor} for factor, params in groups.items()]


def _frozen_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule ``name`` of ``model`` with its parameters' gradients turned off (``freeze``).

    Raises:
        VidmatteError: ``name`` is not a module of the model.
    """
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise VidmatteError(f"freeze: {name!r} names no module of the model") from None
    return module.requires_grad_(False)


def resolved_precision(precision: PrecisionSetting, device: torch.device) -> Precision:
    """``precision`` with ``auto`` decided for ``device`` (see :data:`PrecisionSetting`)."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch (CPU and CUDA) generator states, as plain values and tensors."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            **numpy_state,
            "state": {**numpy_state["state"], "key": numpy_state["state"]["key"].tolist()},
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    key = np.asarray(numpy_state["state"]["key"], dtype=np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": key}})
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _agreed(context: DistributedContext, flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (ranks must stop at the same step)."""
    if not context.distributed:
        return flag
    value = torch.tensor([float(flag)], device=context.device)
    torch.distributed.broadcast(value, 0)
    return bool(value.item())


class Trainer:
    """Trains one model on one stage.

    Args:
        config: the run.
        context: the process's place in a distributed run (default: read from the environment
            by :func:`init_distributed`).

    Raises:
        VidmatteError: a model of the wrong family for the stage, unreadable ``init`` weights,
            missing data folders.
    """

    def __init__(self, config: TrainConfig, context: DistributedContext | None = None) -> None:
        self.config = config
        self.context = init_distributed(config.device) if context is None else context
        if config.deterministic:
            if self.context.device.type == "cuda":  # cuBLAS needs a fixed workspace to be deterministic
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        seed_everything(config.seed)  # the same initial weights on every rank
        model = build_model(config.model)
        family = MODEL_FAMILIES[config.stage]
        if not config.model.startswith(family + "-"):
            raise VidmatteError(
                f"model {config.model} cannot train in stage {config.stage} (needs {family}-*)"
            )
        if config.backbone_init is not None:
            self._load_backbone(model, config.backbone_init)
        if config.init is not None:
            load_weights_into(model, config.init, expected_model=config.model)
        self._frozen = [_frozen_module(model, name) for name in config.freeze]
        seed_everything(config.seed + self.context.rank)
        device = self.context.device
        self.model = model.to(device)
        self.network: nn.Module = self.model
        # the moving average (config.ema): a copy whose tensors follow the model's after every step
        self.average = copy.deepcopy(self.model).eval() if config.ema is not None else None
        if self.context.distributed:
            self.network = DistributedDataParallel(
                self.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                # AdaM's segmentation steps leave the alpha heads unused, and the guided filter
                # only runs on downsampled frames
                find_unused_parameters=family == "adam",
            )
        optim = config.optim
        self.optimizer = torch.optim.Adam(
            parameter_groups(self.model, optim),
            lr=optim.lr,
            betas=optim.betas,
            weight_decay=optim.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, WarmupCosine(optim.warmup_steps, config.steps, optim.final_lr_fraction)
        )
        self.amp_dtype = autocast_dtype(resolved_precision(config.precision, device))
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        rank, world = self.context.rank, self.context.world_size
        self.streams = {
            name: BatchStream(getattr(config, name), rank, world) for name, _ in SCHEDULES[config.stage]
        }
        self.store = CheckpointStore(Path(config.out) / "checkpoints", config.keep_last)
        self.step = 0
        self._validation: BatchStream | None = None

    # -------------------------------------------------------------------------------- training
    def _load_backbone(self, model: nn.Module, name_or_path: str) -> None:
        """Start the model's MobileNetV2 from ImageNet or MoveNet weights (``backbone_init``)."""
        backbones = [module for module in model.modules() if isinstance(module, MobileNetV2)]
        if len(backbones) != 1:
            raise VidmatteError(
                f"{self.config.model}: backbone_init loads MobileNetV2 weights, and this model's "
                "backbone is not a MobileNetV2 (for the ResNet MSG-VIM, start from a checkpoint with 'init')"
            )
        backbone = backbones[0]
        if name_or_path == MOVENET:
            report = load_movenet_mobilenetv2(backbone, calibration_images())
        else:
            report = load_imagenet_mobilenetv2(backbone, name_or_path)
        if self.context.is_main:
            print(
                f"{name_or_path}: {len(report.loaded)} backbone tensors loaded, "
                f"{len(report.skipped)} skipped ({', '.join(report.skipped)})",
                flush=True,
            )

    def _train_mode(self) -> None:
        """Training mode, except for the frozen modules, whose batch norms keep their statistics."""
        self.network.train()
        for module in self._frozen:
            module.eval()

    def _iteration(self) -> tuple[StepResult, float]:
        """One optimisation step; returns its result and the largest learning rate it used."""
        source, step_function = iteration_plan(self.config.stage, self.step)
        batch = _to_device(next(self.streams[source]), self.context.device)
        with torch.autocast(self.context.device.type, self.amp_dtype, enabled=self.amp_dtype is not None):
            result = step_function(self.network, batch, self.config)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(result.loss).backward()
        self.scaler.unscale_(self.optimizer)
        if self.config.optim.clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = max(self.scheduler.get_last_lr())
        self.scheduler.step()
        self.step += 1
        if self.average is not None:
            self._update_average()
        return result, lr

    @torch.no_grad()
    def _update_average(self) -> None:
        weight = 1 - self.config.ema
        for average, current in zip(
            self.average.state_dict().values(), self.model.state_dict().values(), strict=True
        ):
            if average.is_floating_point():
                average.lerp_(current, weight)
            else:
                average.copy_(current)  # batch-norm step counters

    def fit(self) -> dict[str, float]:
        """Train from the current step to ``config.steps``, saving and validating on schedule.

        Returns:
            The last step's loss and terms (averaged over ranks).

        Raises:
            VidmatteError: the loss became NaN or infinite.
        """
        config, context = self.config, self.context
        reporter = ProgressReporter(
            Path(config.out), config.steps, self.step, config.log_every, context.is_main
        )
        summary: dict[str, float] = {}
        deadline = None if config.time_limit is None else time.monotonic() + config.time_limit
        self._train_mode()
        try:
            while self.step < min(config.steps, config.stop_at or config.steps):
                result, lr = self._iteration()
                names = ["loss", *result.terms]
                values = mean_over_ranks(
                    context, torch.stack([result.loss.detach().float(), *result.terms.values()])
                )
                summary = dict(zip(names, values.tolist(), strict=True))
                if not math.isfinite(summary["loss"]):
                    raise VidmatteError(
                        f"{config.out}: step {self.step}: the loss is not finite; lower optim.lr, "
                        "set optim.clip_grad_norm or use precision fp32"
                    )
                clips = result.frames.shape[0] * context.world_size
                terms = {k: v for k, v in summary.items() if k != "loss"}
                reporter.step(self.step, summary["loss"], terms, lr, clips)
                if config.image_every and self.step % config.image_every == 0:
                    reporter.images(self.step, result.frames, result.alpha.detach(), result.truth)
                out_of_time = deadline is not None and _agreed(context, time.monotonic() >= deadline)
                last = self.step in (config.steps, config.stop_at)
                if self.step % config.save_every == 0 or last or out_of_time:
                    self.save()
                if config.validate_every and self.step % config.validate_every == 0:
                    reporter.scalars(self.step, "val", self.validate())
                if out_of_time:
                    break
        finally:
            reporter.close()
        broadcast_buffers(context, self.model)
        return summary

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Score the first ``validation_batches`` batches of ``config.validation`` (rank 0 only), on
        every person of each clip (``adam.subset`` is a training device), so that runs compare.

        Returns:
            ``{"loss": mean loss, "mad": mean |α - α_true| x 1e3}``; empty on other ranks or
            without a validation source.
        """
        config = replace(self.config, adam=replace(self.config.adam, subset=0.0))
        if config.validation is None or not self.context.is_main:
            return {}
        if self._validation is None:
            self._validation = BatchStream(config.validation, limit=config.validation_batches)
        self._validation.seek(0)
        step_function = SCHEDULES[config.stage][0][1]
        losses, errors = [], []
        model = self.model if self.average is None else self.average
        model.eval()
        try:
            for batch in self._validation:
                batch = _to_device(batch, self.context.device)
                with torch.autocast(
                    self.context.device.type, self.amp_dtype, enabled=self.amp_dtype is not None
                ):
                    result = step_function(model, batch, config)
                losses.append(float(result.loss))
                errors.append(float((result.alpha.float() - result.truth.float()).abs().mean()) * ALPHA_SCALE)
        finally:
            self._train_mode()
        return {"loss": float(np.mean(losses)), "mad": float(np.mean(errors))}

    # ----------------------------------------------------------------------------- checkpoints
    def save(self) -> Checkpoint | None:
        """Write a checkpoint of the current step (every rank must call it; rank 0 writes).

        Returns:
            The checkpoint on rank 0, ``None`` on other ranks.
        """
        rng_states = gather_objects(self.context, rng_state())
        checkpoint = None
        if self.context.is_main:
            state = {
                "step": self.step,
                "model": self.config.model,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "data": {name: stream.position for name, stream in self.streams.items()},
                "rng": rng_states,
                "config": config_to_dict(self.config),
            }
            weights = self.model.state_dict()
            if self.average is not None:  # what later stages and exports read is the average
                state["raw_weights"], weights = weights, self.average.state_dict()
            checkpoint = self.store.save(self.step, weights, state, {MODEL_KEY: self.config.model})
        barrier(self.context)
        return checkpoint

    def resume(self, path: str | Path | None = None) -> int:
        """Continue from a checkpoint: ``path`` (either of its files) or the run's latest.

        Restores weights, optimiser, scheduler, gradient scaler, step, data positions and RNG
        states. Without any checkpoint in the run folder the run starts from step 0.

        Returns:
            The step training continues after.

        Raises:
            VidmatteError: a checkpoint of another model, of another optimiser layout, or unreadable.
        """
        checkpoint = find_checkpoint(path) if path is not None else self.store.latest()
        if checkpoint is None:
            if self.context.is_main:
                print(f"{self.store.folder}: no checkpoint, starting from step 0", flush=True)
            return self.step
        state = read_state(checkpoint.state)
        if state.get("model") != self.config.model:
            raise VidmatteError(
                f"{checkpoint.state}: training state of {state.get('model')}, not of {self.config.model}"
            )
        averaged = "raw_weights" in state
        if averaged != (self.average is not None):
            raise VidmatteError(
                f"{checkpoint.state}: saved {'with' if averaged else 'without'} a moving average of the "
                f"weights, and this run has {'one' if self.average is not None else 'none'} ('ema')"
            )
        # an averaged run's checkpoint weights are the average; its raw weights are in the state
        loaded = self.model if self.average is None else self.average
        load_weights_into(loaded, checkpoint.weights, expected_model=self.config.model)
        try:
            if self.average is not None:
                self.model.load_state_dict(state["raw_weights"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            positions = state["data"]
            for name, stream in self.streams.items():
                stream.seek(int(positions[name]))
        except (KeyError, ValueError) as error:
            raise VidmatteError(f"{checkpoint.state}: does not fit this run ({error})") from None
        self.step = int(state["step"])
        states = state["rng"]
        set_rng_state(states[self.context.rank] if len(states) == self.context.world_size else states[0])
        if self.context.is_main:
            print(f"{checkpoint.weights}: resumed at step {self.step}", flush=True)
        return self.step


def run_training(config: TrainConfig, resume: bool | str | Path = False) -> dict[str, float]:
    """Set up the process (group), train, and leave the group: what ``vidmatte train`` does.

    Args:
        config: the run.
        resume: ``True`` continues from the run's latest checkpoint (if any), a path from that
            checkpoint, ``False`` starts afresh.

    Returns:
        The last step's loss and terms.
    """
    context = init_distributed(config.device)
    try:
        trainer = Trainer(config, context)
        if resume:
            trainer.resume(None if resume is True else resume)
        return trainer.fit()
    finally:
        shutdown_distributed(context)
