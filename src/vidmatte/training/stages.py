"""What one training iteration computes, per stage: AdaM stages 1-3 and MSG-VIM.

- ``adam-segmentation`` (stage 1): segmentation clips, Fg/Bg cross-entropy alone; memory starts
  from the model's own mask head (the built-in first-frame segmentor learns here).
- ``adam-matting`` (stage 3, or matting alone): matting clips, the full AdaM loss; memory starts
  from the simulated segmenter's mask of frame 0 and is updated with the predicted masks (the
  self-update mechanism), as at inference.
- ``adam-alternating`` (stage 2): matting clips on odd iterations (1, 3, ...), segmentation clips
  on even ones.
- ``msgvim``: one instance per clip (picked by the clip's seed) with its guidance as target mask
  and the union of the other instances' guidance as reference; ``L1 + Laplacian + composition``
  on target and reference, for each of the three outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from vidmatte.training.batches import Batch
from vidmatte.training.config import TrainConfig
from vidmatte.training.losses import (
    AdamLossWeights,
    adam_loss,
    composition_loss,
    l1_loss,
    laplacian_loss,
)


@dataclass(frozen=True)
class StepResult:
    """The loss of one iteration and what to show of it.

    Attributes:
        loss: scalar to minimise.
        terms: unweighted loss terms by name (detached scalars).
        frames: ``(B, T, 3, H, W)`` input RGB in ``[0, 1]``.
        alpha: ``(B, T, 1, H, W)`` predicted alpha (the target instance's for MSG-VIM).
        truth: ``(B, T, 1, H, W)`` its ground truth (a binary mask for segmentation).
    """

    loss: Tensor
    terms: dict[str, Tensor]
    frames: Tensor
    alpha: Tensor
    truth: Tensor


StepFunction = Callable[[nn.Module, Batch, TrainConfig], StepResult]


def _decoder(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model).decoder  # through DistributedDataParallel


def _supervised(model: nn.Module, weights: AdamLossWeights) -> AdamLossWeights:
    """``weights`` without the terms of outputs the decoder derives instead of predicting (table 4)."""
    predicts = _decoder(model).predicts
    return replace(
        weights,
        mask=weights.mask if "mask" in predicts else 0.0,
        coarse=weights.coarse if "coarse" in predicts else 0.0,
    )


def chosen_people(batch: Batch, subset: float) -> tuple[Tensor, Tensor]:
    """The people each clip is about (:attr:`AdamStageConfig.subset`).

    With probability ``subset``, a clip of two or more people (``valid`` slots) is about a random
    non-empty proper subset of them, drawn from the clip's ``seed``; otherwise about every person.

    Returns:
        ``(people, partial)``: ``(B, M)`` bool, the chosen slots; ``(B,)`` bool, the clips about a subset.
    """
    valid = batch["valid"].cpu()
    people = valid.clone()
    for b, seed in enumerate(batch["seed"].tolist()):
        rng = np.random.default_rng([seed, 17])
        slots = np.flatnonzero(valid[b].numpy())
        if len(slots) > 1 and rng.random() < subset:
            people[b] = False
            people[b, rng.choice(slots, rng.integers(1, len(slots)), replace=False)] = True
    device = batch["valid"].device
    return people.to(device), (people != valid).any(1).to(device)


def _only(people: Tensor, slots: Tensor) -> Tensor:
    """``(B, M, ...)`` per-slot ``slots`` with those not in ``people`` (``(B, M)`` bool) zeroed."""
    return slots * people.view(*people.shape, *[1] * (slots.dim() - 2)).to(slots)


def _per_clip(partial: Tensor, subset: Tensor, everyone: Tensor) -> Tensor:
    """``subset`` for the ``(B,)`` clips that are ``partial``, ``everyone`` for the others."""
    return torch.where(partial.view(-1, *[1] * (everyone.dim() - 1)), subset, everyone)


def adam_matting_step(model: nn.Module, batch: Batch, config: TrainConfig) -> StepResult:
    """AdaM on matting clips: ``frames``, ``pha``, ``fgr``, and as first-frame mask the union of the
    guidance ``masks`` of every slot at frame 0 (the target ``pha`` is every person too); a clip about
    a subset of its people (``adam.subset``) has their masks and visible ``alphas`` alone."""
    frames, alpha, foreground = batch["frames"], batch["pha"], batch["fgr"]
    first_mask = batch["masks"][:, :, 0].amax(1)
    if config.adam.subset:
        people, partial = chosen_people(batch, config.adam.subset)
        first_mask = _per_clip(partial, _only(people, batch["masks"][:, :, 0]).amax(1), first_mask)
        # visible alphas add up to the matte of the people they belong to
        alpha = _per_clip(partial, _only(people, batch["alphas"]).sum(1).clamp(0, 1), alpha)
    weights = _supervised(
        model, AdamLossWeights(config.adam.mask, config.adam.coarse, config.adam.fine, config.adam.foreground)
    )
    output, _ = model(frames, first_mask=first_mask, downsample_ratio=config.adam.downsample_ratio)
    loss, terms = adam_loss(output, alpha, foreground, weights)
    return StepResult(loss, _detached(terms), frames, output.alpha, alpha)


def adam_segmentation_step(model: nn.Module, batch: Batch, config: TrainConfig) -> StepResult:
    """AdaM on segmentation clips (``seg``; a matting clip's ``pha > 0.5`` stands in without it).

    The memory starts from the model's own mask head, or with ``adam.subset`` > 0 from the target's first
    frame: every person, or the subset of slots (``masks``) that the clip is about."""
    frames = batch["frames"]
    truth = batch["seg"] if "seg" in batch else (batch["pha"] > 0.5).to(frames.dtype)
    first_mask = None
    if config.adam.subset:
        people, partial = chosen_people(batch, config.adam.subset)
        truth = _per_clip(partial, _only(people, batch["masks"]).amax(1), truth)
        first_mask = truth[:, 0]
    weights = AdamLossWeights(mask=config.adam.mask, coarse=0.0, fine=0.0, foreground=0.0)
    if "mask" not in _decoder(model).predicts:  # table 4's model (e): its fine alpha is its mask
        weights = AdamLossWeights(mask=0.0, coarse=0.0, fine=config.adam.mask, foreground=0.0)
    output, _ = model(frames, first_mask=first_mask, downsample_ratio=config.adam.downsample_ratio)
    loss, terms = adam_loss(output, truth, None, weights)
    return StepResult(loss, _detached({f"seg_{k}": v for k, v in terms.items()}), frames, output.alpha, truth)


def pick_instances(batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One instance per clip (slot ``seed mod count`` among the valid ones) and its reference.

    Returns:
        ``(target_mask, reference_mask, target_alpha, reference_alpha)``, each ``(B, T, 1, H, W)``:
        the instance's guidance and visible alpha, and the union (clipped sum) of the others'.
    """
    valid, masks, alphas = batch["valid"], batch["masks"], batch["alphas"]
    picks = []
    for b in range(valid.shape[0]):
        slots = torch.nonzero(valid[b]).flatten()
        picks.append(slots[int(batch["seed"][b]) % len(slots)])
    pick = torch.stack(picks).to(masks.device)
    chosen = torch.nn.functional.one_hot(pick, valid.shape[1]).bool()
    others = (valid.to(masks.device) & ~chosen)[:, :, None, None, None, None].to(masks.dtype)
    rows = torch.arange(valid.shape[0], device=masks.device)
    target_mask, target_alpha = masks[rows, pick], alphas[rows, pick]
    reference_mask = (masks * others).amax(1)
    reference_alpha = (alphas * others).sum(1).clamp(0, 1)
    return target_mask, reference_mask, target_alpha, reference_alpha


def msgvim_step(model: nn.Module, batch: Batch, config: TrainConfig) -> StepResult:
    """MSG-VIM on multi-instance clips: ``frames``, ``fgr``, ``bgr``, ``alphas``, ``masks``, ``valid``."""
    frames = batch["frames"]
    target_mask, reference_mask, target_alpha, reference_alpha = pick_instances(batch)
    output = model(frames, target_mask, reference_mask)
    truth = torch.cat([target_alpha, reference_alpha], dim=2)
    weights = config.msgvim
    terms: dict[str, Tensor] = {}
    loss = frames.new_zeros(())
    for name, pred, weight in zip(
        ("os1", "os4", "os8"),
        (output.alpha_os1, output.alpha_os4, output.alpha_os8),
        weights.outputs,
        strict=True,
    ):
        union = pred.float().sum(2, keepdim=True).clamp(0, 1)
        parts = {
            "l1": l1_loss(pred.float(), truth),
            "laplacian": laplacian_loss(pred.float(), truth),
            "composition": composition_loss(union, batch["fgr"], batch["bgr"], frames),
        }
        for term, value in parts.items():
            terms[f"{name}_{term}"] = value
            loss = loss + weight * getattr(weights, term) * value
    return StepResult(loss, _detached(terms), frames, output.alpha[:, :, :1], target_alpha)


def _detached(terms: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach() for k, v in terms.items()}


# stage -> (data source, step) for iterations 1, 2, ... in turn
SCHEDULES: dict[str, tuple[tuple[str, StepFunction], ...]] = {
    "adam-segmentation": (("data", adam_segmentation_step),),
    "adam-matting": (("data", adam_matting_step),),
    "adam-alternating": (("data", adam_matting_step), ("segmentation", adam_segmentation_step)),
    "msgvim": (("data", msgvim_step),),
}
MODEL_FAMILIES = {
    "adam-segmentation": "adam",
    "adam-matting": "adam",
    "adam-alternating": "adam",
    "msgvim": "msgvim",
}


def iteration_plan(stage: str, step: int) -> tuple[str, StepFunction]:
    """Source and step function of the iteration that follows ``step`` completed steps."""
    schedule = SCHEDULES[stage]
    return schedule[step % len(schedule)]
