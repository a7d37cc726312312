"""Batches as a function of the step: seeking, ranks, workers, and MSG-VIM's instance picking."""

from __future__ import annotations

from dataclasses import replace

import torch

from vidmatte.data.guidance import MaskAugment
from vidmatte.training.batches import BatchStream
from vidmatte.training.config import SourceConfig
from vidmatte.training.stages import pick_instances

CLIPS = SourceConfig(kind="synthetic", frames=1, size=(32, 32), batch_size=2, augment=None)


def seeds(stream: BatchStream, count: int) -> list[list[int]]:
    return [next(stream)["seed"].tolist() for _ in range(count)]


def test_a_stream_resumed_at_a_position_continues_exactly():
    straight = seeds(BatchStream(CLIPS), 4)
    resumed = BatchStream(CLIPS)
    resumed.seek(2)
    assert seeds(resumed, 2) == straight[2:]
    assert resumed.position == 4
    assert len({s for batch in straight for s in batch}) == 8  # every clip is new


def test_ranks_draw_disjoint_clips_and_workers_change_nothing():
    rank0, rank1 = (seeds(BatchStream(CLIPS, rank=r, world_size=2), 2) for r in (0, 1))
    assert not {s for b in rank0 for s in b} & {s for b in rank1 for s in b}
    assert seeds(BatchStream(replace(CLIPS, workers=1), rank=1, world_size=2), 2) == rank1


def test_a_fixed_set_of_clips_cycles():
    drawn = seeds(BatchStream(replace(CLIPS, clips=1)), 2)
    assert len({s for batch in drawn for s in batch}) == 1


def test_mask_augmentation_changes_the_guidance_of_synthetic_clips_only_where_asked():
    source = replace(CLIPS, frames=2, instances=(2, 2), size=(48, 48), batch_size=1)
    plain = next(BatchStream(source))
    augmented = next(
        BatchStream(replace(source, mask_augment=MaskAugment(erase=0.0, paste=0.0, merge=1.0, temporal=0.0)))
    )
    assert torch.equal(plain["alphas"], augmented["alphas"])
    merged = augmented["masks"]
    # merge = 1: every instance's guidance is the union of its own and another's
    union = plain["masks"].amax(1, keepdim=True).expand_as(merged)
    assert torch.equal(merged, union)


def test_pick_instances_takes_one_valid_instance_and_the_union_of_the_others():
    batch, slots, frames, size = 2, 3, 2, 4
    alphas = torch.rand(batch, slots, frames, 1, size, size) * 0.3
    masks = (alphas > 0.15).float()
    valid = torch.tensor([[True, True, False], [True, True, True]])
    seed = torch.tensor([1, 5])  # clip 0 picks slot 1 of its 2 valid; clip 1 slot 5 % 3 = 2
    target_mask, reference_mask, target_alpha, reference_alpha = pick_instances(
        {"alphas": alphas, "masks": masks, "valid": valid, "seed": seed}
    )
    assert torch.equal(target_alpha[0], alphas[0, 1]) and torch.equal(target_alpha[1], alphas[1, 2])
    assert torch.equal(target_mask[1], masks[1, 2])
    assert torch.allclose(reference_alpha[0], alphas[0, 0])  # the invalid slot 2 is left out
    assert torch.allclose(reference_alpha[1], (alphas[1, 0] + alphas[1, 1]).clamp(0, 1))
    assert torch.equal(reference_mask[1], torch.maximum(masks[1, 0], masks[1, 1]))


def _first_masks(model: torch.nn.Module) -> list:
    seen = []
    model.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["first_mask"]), with_kwargs=True
    )
    return seen


def _three_people(seeds: list[int]) -> dict[str, torch.Tensor]:
    """Clips of 32x32 and 2 frames: slot 0 the left quarter, slot 1 empty, slot 2 the right half."""
    clips = len(seeds)
    masks = torch.zeros(clips, 3, 2, 1, 32, 32)
    masks[:, 0, :, :, :, :8] = 1
    masks[:, 2, :, :, :, 16:] = 1
    return {
        "frames": torch.rand(clips, 2, 3, 32, 32),
        "pha": masks.amax(1),
        "fgr": torch.rand(clips, 2, 3, 32, 32),
        "masks": masks,
        "alphas": masks * 0.75,
        "valid": torch.tensor([[True, False, True]] * clips),
        "seed": torch.tensor(seeds),
    }


def test_adam_matting_steps_start_the_memory_from_every_guided_person():
    from vidmatte import build_model
    from vidmatte.training.config import TrainConfig
    from vidmatte.training.stages import adam_matting_step

    model = build_model("adam-tiny")
    seen = _first_masks(model)
    batch = _three_people([0])
    result = adam_matting_step(model, batch, TrainConfig())
    torch.testing.assert_close(seen[0], batch["masks"][:, :, 0].amax(1))
    torch.testing.assert_close(result.truth, batch["pha"])


def test_chosen_people_are_a_proper_subset_with_the_subset_probability_and_fixed_by_the_seed():
    from vidmatte.training.stages import chosen_people

    batch = _three_people(list(range(200)))
    people, partial = chosen_people(batch, 0.0)
    assert torch.equal(people, batch["valid"]) and not partial.any()
    people, partial = chosen_people(batch, 0.5)
    assert 60 < int(partial.sum()) < 140
    assert not people[:, 1].any() and torch.equal(people.sum(1), torch.where(partial, 1, 2))
    assert torch.equal(chosen_people(batch, 0.5)[0], people)
    alone = {**batch, "valid": torch.tensor([[True, False, False]] * 200)}
    assert not chosen_people(alone, 1.0)[1].any()


def test_clips_about_a_subset_give_the_memory_and_the_targets_those_people_alone():
    from vidmatte import build_model
    from vidmatte.training.config import AdamStageConfig, TrainConfig
    from vidmatte.training.stages import adam_matting_step, adam_segmentation_step, chosen_people

    model = build_model("adam-tiny")
    seen = _first_masks(model)
    batch = _three_people(list(range(6)))
    batch["valid"][:] = True  # slot 1 now a person seen through slot 2's left part
    batch["masks"][:, 1, :, :, :, 8:24] = 1
    batch["alphas"][:, 1, :, :, :, 8:24] = 0.5
    config = TrainConfig(adam=AdamStageConfig(subset=1.0))
    people, partial = chosen_people(batch, 1.0)
    assert partial.all() and people[:, 1:].all(1).any()  # some clip is about slots 1 and 2 together
    weight = people[:, :, None, None, None, None].float()
    matte = adam_matting_step(model, batch, config)
    torch.testing.assert_close(seen[-1], (batch["masks"] * weight).amax(1)[:, 0])
    torch.testing.assert_close(matte.truth, (batch["alphas"] * weight).sum(1).clamp(0, 1))
    segmentation = {k: v for k, v in batch.items() if k not in ("alphas", "fgr")}
    segmented = adam_segmentation_step(model, {**segmentation, "seg": batch["pha"]}, config)
    torch.testing.assert_close(segmented.truth, (batch["masks"] * weight).amax(1))
    torch.testing.assert_close(seen[-1], segmented.truth[:, 0])
    adam_segmentation_step(model, {**segmentation, "seg": batch["pha"]}, TrainConfig())
    assert seen[-1] is None  # the paper's segmentation clips: the memory starts from the mask head
