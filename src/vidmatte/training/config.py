"""Typed training configuration, loaded from a YAML file with ``key=value`` overrides.

A YAML file describes one experiment; every key must name a field of :class:`TrainConfig` (or of
a nested configuration), so a typo is an error, not a silently ignored setting::

    model: adam-small
    stage: adam-matting
    steps: 20000
    data: {kind: synthetic, frames: 4, size: [144, 256], batch_size: 2}
    optim: {lr: 1.0e-4, warmup_steps: 500, lr_multipliers: {encoder.backbone: 0.5}}

Overrides use dotted paths and YAML values: ``optim.lr=3e-4``, ``data.size=[64,64]``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vidmatte.data.augment import AugmentConfig
from vidmatte.data.guidance import MaskAugment, SegmenterErrors
from vidmatte.errors import VidmatteError
from vidmatte.models.precision import PRECISION_SETTINGS, PrecisionSetting
from vidmatte.validation import check_fields

STAGES = ("adam-segmentation", "adam-matting", "adam-alternating", "msgvim")
SOURCE_KINDS = ("synthetic", "videomatte", "instances", "ytvis", "coco")


@dataclass(frozen=True)
class SourceConfig:
    """One stream of training clips.

    Attributes:
        kind: ``synthetic`` (the generator alone), ``videomatte`` (VideoMatte240K composited over
            backgrounds), ``instances`` (2 to 4 VideoMatte240K people in one clip, for MSG-VIM),
            ``ytvis`` or ``coco`` (person segmentation).
        frames: clip length ``T``.
        size: ``(height, width)`` of the clips.
        instances: ``(min, max)`` people per clip (``synthetic`` and ``instances``); ``max`` is the
            number of slots in a batch.
        batch_size: clips per step and process.
        workers: ``DataLoader`` worker processes (0: in the training process).
        seed: base seed of the stream; a clip depends on ``(seed, its index)`` only.
        clips: ``synthetic`` only: cycle through this many distinct clips (a fixed set, e.g. to
            check that a model can fit it); ``None``: every clip is new.
        foregrounds: VideoMatte240K folder with ``fgr/`` and ``pha/`` (``videomatte``, ``instances``).
        backgrounds: background folders (``videomatte``, ``instances``); for ``synthetic``, folders
            of real photographs (searched recursively) that the generator's photo backgrounds are
            drawn from instead of scikit-image's samples.
        far: ``synthetic`` only: probability of a far view with small figures (``ClipSpec.far``).
        close: ``synthetic`` only: probability of a close-up of a single figure (``ClipSpec.close``).
        placement: ``instances`` only: crop-scale range of each person (``InstanceConfig.placement``;
            above 1 zooms out: 4 makes a person a quarter of their height in the foreground clip).
        annotations: annotation JSON (``ytvis``, ``coco``).
        images: image folder (``ytvis``, ``coco``).
        augment: clip augmentation (its ``size`` is replaced by ``size``); ``None``: none
            (``synthetic`` only).
        errors: the simulated segmenter that makes guidance masks.
        mask_augment: MSG-VIM's Mixture of Mask Augmentations and temporal mask guidance on the
            guidance masks; ``None``: none.
    """

    kind: str = "synthetic"
    frames: int = 4
    size: tuple[int, int] = (144, 256)
    instances: tuple[int, int] = (1, 1)
    batch_size: int = 1
    workers: int = 0
    seed: int = 0
    clips: int | None = None
    foregrounds: str | None = None
    backgrounds: tuple[str, ...] = ()
    far: float = 0.0
    close: float = 0.0
    placement: tuple[float, float] = (1.2, 2.0)
    annotations: str | None = None
    images: str | None = None
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    errors: SegmenterErrors = field(default_factory=SegmenterErrors)
    mask_augment: MaskAugment | None = None


@dataclass(frozen=True)
class OptimConfig:
    """Adam with linear warm-up then cosine decay, per-module learning rates and gradient clipping.

    Attributes:
        lr: peak learning rate.
        betas: Adam's betas.
        weight_decay: L2 penalty added to the gradients (Adam's, not AdamW's).
        warmup_steps: steps of linear warm-up from 0 to ``lr``.
        final_lr_fraction: the cosine ends at ``lr * final_lr_fraction`` on the last step.
        clip_grad_norm: largest global gradient norm; ``None``: no clipping.
        lr_multipliers: parameter-name prefix -> factor on ``lr`` (the longest matching prefix
            wins), e.g. ``{"encoder.backbone": 0.5}`` for a slower backbone.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    final_lr_fraction: float = 0.01
    clip_grad_norm: float | None = 1.0
    lr_multipliers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AdamStageConfig:
    """AdaM's training step.

    Attributes:
        mask, coarse, fine, foreground: loss weights ``ω`` (segmentation steps use ``mask`` alone).
        downsample_ratio: the network's working scale; below 1 trains the guided filter (stage 3).
        subset: probability that a clip of two or more people is about a random subset of them: its
            first-frame mask and targets hold those people alone, so that the network must read its
            memory to know whom to matte; with ``subset`` > 0 segmentation clips also start the memory
            from their first frame's target instead of the mask head. 0 (the paper's): every person.
    """

    mask: float = 1.0
    coarse: float = 1.0
    fine: float = 1.0
    foreground: float = 1.0
    downsample_ratio: float = 1.0
    subset: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, ("subset",), 0, 1)


@dataclass(frozen=True)
class MsgVimStageConfig:
    """MSG-VIM's training step: ``L1 + Laplacian + composition`` on target and reference, per output.

    Attributes:
        l1, laplacian, composition: weights of the terms.
        outputs: weights of the full-resolution, 1/4 and 1/8 outputs.
    """

    l1: float = 1.0
    laplacian: float = 1.0
    composition: float = 1.0
    outputs: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        model: registry name of the network (``build_model``).
        stage: ``adam-segmentation`` (stage 1), ``adam-matting`` (stage 3, or matting alone),
            ``adam-alternating`` (stage 2: matting on odd iterations, segmentation on even ones)
            or ``msgvim``.
        out: run folder (checkpoints, log, TensorBoard events).
        init: weights to start from (the previous stage's checkpoint); ``None``: fresh weights.
        backbone_init: pretrained weights for the MobileNetV2 backbone (AdaM's, ``msgvim-mnv2-w15``'s),
            loaded before ``init``:
            ``imagenet`` (the checkpoint that ``vidmatte fetch-backbone`` puts in its default place),
            the path of torchvision's ``mobilenet_v2`` checkpoint (both width 1.0), or ``movenet``
            (the shipped person detector's width-1.5 backbone, for the ``*-mnv2-w15`` models); ``None``: none.
        freeze: modules left as loaded (names like ``encoder.backbone``): no gradient, no optimiser
            state, batch-norm statistics kept (the module stays in eval mode while the rest trains).
        ema: decay of an exponential moving average of the weights and batch-norm statistics, updated
            after every step (e.g. 0.99: about the last 100 steps); checkpoints' weights and validation
            are the average, the raw weights travel in the training state; ``None``: no average.
        steps: optimisation steps.
        seed: seed of the weights' initialisation and of every random number in the run.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``.
        precision: ``auto`` (bf16 or fp16 autocast on CUDA, fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
        deterministic: deterministic algorithms only (bitwise reproducible on CPU).
        data: the clips of every step (matting clips in stage 2).
        segmentation: stage 2's segmentation clips (even iterations).
        validation: held-out clips for :meth:`Trainer.validate`; ``None``: no validation.
        validation_batches: batches of ``validation`` scored per validation.
        validate_every: steps between validations (0: never during ``fit``).
        optim: optimiser and schedule.
        adam, msgvim: the step of each model family.
        save_every: steps between checkpoints (the last step is always saved).
        keep_last: checkpoints kept on disk.
        log_every: steps between log lines and TensorBoard scalars.
        image_every: steps between TensorBoard sample images (0: never).
        time_limit: seconds of training after which :meth:`Trainer.fit` saves and stops early
            (``None``: none; the learning-rate schedule still spans ``steps``).
        stop_at: the step at which :meth:`Trainer.fit` saves and stops early, the schedule still
            spanning ``steps`` (a run that was cut short, then continued by a later stage).
    """

    model: str = "adam-tiny"
    stage: str = "adam-matting"
    out: str = "runs/default"
    init: str | None = None
    backbone_init: str | None = None
    freeze: tuple[str, ...] = ()
    ema: float | None = None
    steps: int = 1000
    seed: int = 0
    device: str = "auto"
    precision: PrecisionSetting = "auto"
    deterministic: bool = False
    data: SourceConfig = field(default_factory=SourceConfig)
    segmentation: SourceConfig | None = None
    validation: SourceConfig | None = None
    validation_batches: int = 4
    validate_every: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    adam: AdamStageConfig = field(default_factory=AdamStageConfig)
    msgvim: MsgVimStageConfig = field(default_factory=MsgVimStageConfig)
    save_every: int = 500
    keep_last: int = 3
    log_every: int = 10
    image_every: int = 0
    time_limit: float | None = None
    stop_at: int | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.precision not in PRECISION_SETTINGS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISION_SETTINGS)}, got {self.precision!r}"
            )
        if self.stage == "adam-alternating" and self.segmentation is None:
            raise ValueError("stage adam-alternating needs a 'segmentation' source")
        for source in (self.data, self.segmentation, self.validation):
            if source is not None and source.kind not in SOURCE_KINDS:
                raise ValueError(f"data kind must be one of {', '.join(SOURCE_KINDS)}, got {source.kind!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema must be a decay between 0 and 1 (exclusive), got {self.ema}")
        if self.steps < 1 or self.save_every < 1 or self.keep_last < 1 or self.log_every < 1:
            raise ValueError("steps, save_every, keep_last and log_every must be positive")


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML experiment into a :class:`TrainConfig`, then apply ``key=value`` overrides.

    Raises:
        VidmatteError: unreadable YAML, an unknown key, a value of the wrong type or a malformed
            override; the message starts with the file's path.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise VidmatteError(f"{path}: no such file") from None
    except (OSError, UnicodeError, yaml.YAMLError) as error:
        raise VidmatteError(f"{path}: not a readable YAML file ({error})") from None
    if not isinstance(raw, dict):
        raise VidmatteError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key:
            raise VidmatteError(f"{path}: override {override!r} is not key=value")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise VidmatteError(f"{path}: override {override!r}: not a YAML value ({error})") from None
        _set_dotted(raw, key.split("."), parsed)
    try:
        return _build(TrainConfig, raw, "")
    except (TypeError, ValueError) as error:
        raise VidmatteError(f"{path}: {error}") from None


def config_to_dict(config: Any) -> Any:
    """A configuration as plain YAML-able values (tuples as lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (tuple, list)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: config_to_dict(v) for k, v in config.items()}
    return config


def _set_dotted(raw: dict, keys: list[str], value: Any) -> None:
    node = raw
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise TypeError(f"{where or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise TypeError(f"unknown setting {where}{unknown[0]} (known: {', '.join(sorted(names))})")
    values = {name: _convert(hints[name], value, f"{where}{name}") for name, value in raw.items()}
    return cls(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    """``value`` (from YAML) as type ``hint``, recursively; raises ``TypeError`` naming ``where``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, {} if value is None else value, f"{where}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise TypeError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected a mapping, got {value!r}")
        return {_convert(args[0], k, where): _convert(args[1], v, where) for k, v in value.items()}
    if hint is float and not isinstance(value, bool):
        try:  # YAML reads 1e-4 (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: expected a number, got {value!r}") from None
    if hint is bool and not isinstance(value, bool):
        raise TypeError(f"{where}: expected true or false, got {value!r}")
    if hint in (int, str) and (not isinstance(value, hint) or isinstance(value, bool)):
        raise TypeError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
