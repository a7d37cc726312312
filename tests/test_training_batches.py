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


def test_adam_matting_steps_start_the_memory_from_every_guided_person():
    from vidmatte import build_model
    from vidmatte.training.config import TrainConfig
    from vidmatte.training.stages import adam_matting_step

    model = build_model("adam-tiny")
    seen = []
    model.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs["first_mask"]), with_kwargs=True
    )
    masks = torch.zeros(1, 3, 2, 1, 32, 32)
    masks[0, 0, :, :, :8] = 1  # three people; the first slot alone covers a quarter of the frame
    masks[0, 2, :, :, 16:] = 1
    batch = {"frames": torch.rand(1, 2, 3, 32, 32), "pha": masks.amax(1), "fgr": torch.rand(1, 2, 3, 32, 32)}
    adam_matting_step(model, {**batch, "masks": masks}, TrainConfig())
    torch.testing.assert_close(seen[0], masks[:, :, 0].amax(1))
