"""AdaM model: shapes, ranges, any size, HD path, clip == frame by frame, causality, gradients."""

import warnings

import pytest
import torch

from vidmatte import build_model
from vidmatte.models.adam.geometry import FrameGeometry, auto_downsample_ratio
from vidmatte.models.adam.memory import MemoryBank
from vidmatte.training.losses import adam_loss


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("adam-tiny").eval()


def clip(batch=1, length=4, height=64, width=48, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, length, 3, height, width, generator=generator)


def assert_valid_output(output, batch, length, height, width):
    assert output.alpha.shape == (batch, length, 1, height, width)
    assert output.foreground.shape == (batch, length, 3, height, width)
    assert output.coarse_alpha.shape[:3] == (batch, length, 1)
    assert output.mask_logits.shape[:3] == (batch, length, 2)
    for name in ("alpha", "foreground", "coarse_alpha"):
        value = getattr(output, name)
        assert torch.isfinite(value).all(), name
        assert value.min() >= 0 and value.max() <= 1, name
    assert torch.isfinite(output.mask_logits).all()


@pytest.mark.parametrize(("height", "width"), [(64, 64), (70, 45), (17, 33)])
def test_any_input_size_gives_finite_outputs_in_range(model, height, width):
    with torch.no_grad():
        output, memory = model(clip(2, 3, height, width))
    assert_valid_output(output, 2, 3, height, width)
    assert len(memory) == 1 + 3


def test_downsampled_frames_go_through_the_guided_filter(model):
    frames = clip(1, 2, 96, 128)
    with torch.no_grad():
        full, _ = model(frames, downsample_ratio=1.0)
        low, _ = model(frames, downsample_ratio=0.5)
    assert_valid_output(low, 1, 2, 96, 128)
    assert low.mask_logits.shape[-2:] == (12, 16)
    assert full.mask_logits.shape[-2:] == (24, 32)
    assert not torch.allclose(full.alpha, low.alpha)


def test_an_untrained_guided_filter_is_replaced_by_bilinear_upsampling_with_a_warning(tmp_path):
    from vidmatte.models.loading import load_model, save_weights

    torch.manual_seed(0)
    fresh = build_model("adam-tiny")
    assert not fresh.refiner.is_trained()
    loaded = load_model(save_weights(fresh, tmp_path / "fresh.safetensors", "adam-tiny"))
    assert not loaded.refiner.enabled
    frames = clip(1, 1, 96, 128)
    with torch.no_grad(), pytest.warns(UserWarning, match="guided filter of these weights was never trained"):
        output, _ = loaded(frames, downsample_ratio=0.5)
        loaded.refiner.enabled = True
        filtered, _ = loaded(frames, downsample_ratio=0.5)
    assert not torch.allclose(output.alpha, filtered.alpha)
    loaded.refiner.enabled = False
    low, image = torch.rand(1, 4, 48, 64), frames[:, 0]
    hidden = torch.zeros(1, 8, 48, 64)
    with pytest.warns(UserWarning, match="upsampled bilinearly"):
        foreground, alpha = loaded.refiner(image, image[..., ::2, ::2], low[:, :3], low[:, 3:], hidden)
    expected = torch.nn.functional.interpolate(low, (96, 128), mode="bilinear")
    torch.testing.assert_close(torch.cat([foreground, alpha], 1), expected)

    trained = build_model("adam-tiny").train()
    trained(clip(2, 1, 96, 128), downsample_ratio=0.5)  # a training step at a ratio below 1 updates BN
    assert trained.refiner.is_trained()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(save_weights(trained, tmp_path / "t.safetensors", "adam-tiny")).refiner.enabled


def test_auto_downsample_brings_hd_to_512_on_the_long_side():
    geometry = FrameGeometry.for_size(1080, 1920)
    assert (geometry.low_height, geometry.low_width) == (288, 512)
    assert geometry.padded_size == (288, 512)
    assert auto_downsample_ratio(288, 512) == 1.0
    assert not FrameGeometry.for_size(45, 70).downsampled
    assert FrameGeometry.for_size(45, 70).padded_size == (48, 80)


def test_single_frame_input_has_no_time_axis(model):
    with torch.no_grad():
        output, _ = model(clip(2, 1)[:, 0])
    assert output.alpha.shape == (2, 1, 64, 48)


def test_clip_at_once_equals_frame_by_frame(model):
    frames = clip(2, 5)
    mask = (torch.rand(2, 1, 64, 48) > 0.5).float()
    with torch.no_grad():
        whole, whole_memory = model(frames, first_mask=mask)
        memory, pieces = None, []
        for t in range(frames.shape[1]):
            output, memory = model(frames[:, t : t + 1], memory, first_mask=mask)
            pieces.append(output)
    assert len(whole._fields) == 4
    for name in whole._fields:
        stepped = torch.cat([getattr(p, name) for p in pieces], 1)
        torch.testing.assert_close(getattr(whole, name), stepped, atol=1e-5, rtol=1e-4, msg=name)
    torch.testing.assert_close(whole_memory.read(), memory.read(), atol=1e-5, rtol=1e-4)


def test_a_frame_does_not_see_later_frames(model):
    frames = clip(1, 6)
    changed = frames.clone()
    changed[:, 3:] = torch.rand_like(changed[:, 3:])
    with torch.no_grad():
        original, _ = model(frames)
        altered, _ = model(changed)
    for name in original._fields:
        torch.testing.assert_close(getattr(original, name)[:, :3], getattr(altered, name)[:, :3], msg=name)
    assert (original.mask_logits[:, 3:] - altered.mask_logits[:, 3:]).abs().max() > 1e-3


def test_memory_changes_the_output(model):
    frames = clip(1, 3)
    with torch.no_grad():
        _, memory = model(frames[:, :2])
        remembered, _ = model(frames[:, 2], memory)
        fresh, _ = model(frames[:, 2], MemoryBank(capacity=4))
    # an untrained decoder damps the effect on alpha; the Fg/Bg logits show it clearly
    assert (remembered.mask_logits - fresh.mask_logits).abs().max() > 1e-3
    assert not torch.equal(remembered.alpha, fresh.alpha)


def test_first_mask_and_teacher_masks_are_used(model):
    frames = clip(1, 3)
    empty, full = torch.zeros(1, 1, 64, 48), torch.ones(1, 1, 64, 48)
    with torch.no_grad():
        a, memory_a = model(frames, first_mask=empty)
        b, _ = model(frames, first_mask=full)
        _, memory_forced = model(frames, first_mask=empty, masks=torch.ones(1, 3, 1, 64, 48))
    assert (a.mask_logits - b.mask_logits).abs().max() > 1e-3
    assert not torch.allclose(memory_a.read().value, memory_forced.read().value)
    torch.testing.assert_close(memory_a.long_term, memory_forced.long_term)


def test_every_parameter_receives_a_gradient_in_a_training_step():
    torch.manual_seed(1)
    model = build_model("adam-tiny").train()
    frames = clip(2, 3, 64, 96)
    true_alpha = (frames[:, :, :1] > 0.5).float()
    output, _ = model(frames, first_mask=true_alpha[:, 0], downsample_ratio=0.5)
    total, terms = adam_loss(output, true_alpha, frames)
    assert set(terms) == {"mask", "coarse", "fine", "foreground"}
    total.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_bfloat16_autocast_on_cpu_stays_close_to_float32(model):
    frames = clip(1, 3)
    with torch.no_grad():
        reference, _ = model(frames)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = model(frames)
    assert torch.isfinite(low.alpha.float()).all()
    assert (low.alpha.float() - reference.alpha).abs().mean() < 0.05


@pytest.mark.parametrize(
    ("first_outputs", "heads"), [("mask+coarse", {"mask", "coarse"}), ("mask", {"mask"}), ("none", set())]
)
def test_the_three_output_variants_of_table_4_train_and_update_memory(tmp_path, first_outputs, heads):
    from vidmatte.training.config import SourceConfig, TrainConfig
    from vidmatte.training.stages import adam_matting_step, adam_segmentation_step

    torch.manual_seed(0)
    model = build_model("adam-tiny", first_outputs=first_outputs)
    assert model.decoder.predicts == {"fine", *heads}
    assert (model.decoder.mask_head is not None) == ("mask" in heads)
    assert (model.decoder.coarse_head is not None) == ("coarse" in heads)
    frames = clip(2, 3, 64, 64)
    output, _ = model(frames)
    assert_valid_output(output, 2, 3, 64, 64)
    if not heads:  # model (e): the memory's Fg/Bg mask is the pooled fine alpha
        pooled = torch.nn.functional.avg_pool2d(output.alpha.flatten(0, 1), 4).clamp(1e-4, 1 - 1e-4)
        torch.testing.assert_close(output.mask_logits.flatten(0, 1).softmax(1)[:, 1:], pooled)
    alpha = (frames.mean(2, keepdim=True) > 0.5).float()
    batch = {"frames": frames, "pha": alpha, "fgr": frames, "masks": alpha[:, None], "seg": alpha}
    config = TrainConfig(data=SourceConfig(kind="synthetic"))
    for step in (adam_matting_step, adam_segmentation_step):
        model.zero_grad()
        result = step(model, batch, config)
        result.loss.backward()
        assert torch.isfinite(result.loss) and result.loss > 0
        if "mask" in heads:
            assert model.decoder.mask_head.weight.grad.abs().sum() > 0
    assert set(adam_matting_step(model, batch, config).terms) == {"fine", "foreground", *heads}
    segmentation = "seg_mask" if "mask" in heads else "seg_fine"  # model (e) segments with its fine alpha
    assert set(adam_segmentation_step(model, batch, config).terms) == {segmentation}
    assert set(build_model("adam-mnv2-no-first-output").decoder.predicts) == {"fine"}
