"""Faster formulations of AdaM's decoder and guided filter give the outputs of the plain ones (1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidmatte import build_model
from vidmatte.inference.adam import AdamSession
from vidmatte.inference.torch_engine import fold_batch_norms, prepare_network
from vidmatte.models.adam.decoder import conv_of_parts
from vidmatte.models.adam.geometry import FrameGeometry
from vidmatte.models.adam.guided_filter import DeepGuidedFilter, box_filter, guide
from vidmatte.models.loading import save_weights
from vidmatte.models.registry import available_models

TOLERANCE = 1e-5


def randomise_batch_norms(module: torch.nn.Module, seed: int = 0) -> None:
    """Statistics and affine parameters away from their defaults, so that BatchNorm is not the identity."""
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            for tensor, low, high in (
                (norm.running_mean, -0.2, 0.2),
                (norm.running_var, 0.5, 1.5),
                (norm.weight.data, 0.5, 1.5),
                (norm.bias.data, -0.2, 0.2),
            ):
                tensor.copy_(torch.empty_like(tensor).uniform_(low, high, generator=generator))


def test_a_convolution_of_parts_equals_the_convolution_of_their_concatenation() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(7 + 3, 5, 3, padding=1)
    parts = (torch.rand(2, 7, 9, 11), torch.rand(2, 3, 9, 11))
    expected = conv(torch.cat(parts, 1))
    torch.testing.assert_close(conv_of_parts(conv, parts), expected, atol=TOLERANCE, rtol=0)


def concatenating_decoder(decoder, z, skips, image):
    """The decoder as first written: each block's inputs concatenated before its first convolution."""

    def up(block, x, skip=None):
        x = x if skip is None else torch.cat([x, skip], 1)
        return F.interpolate(block.conv(block.fuse(x)), scale_factor=2, mode="bilinear", align_corners=False)

    f2, f4, f8 = skips
    quarter = up(decoder.up8, up(decoder.up16, z), f8)
    x = up(decoder.up2, up(decoder.up4, quarter, f4), f2)
    hidden = decoder.refine(torch.cat([x, image], 1))
    return quarter, hidden, decoder.fine_head(hidden)


@pytest.mark.parametrize("channels_last", [False, True])
@torch.inference_mode()
def test_the_decoder_without_concatenations_keeps_its_outputs(channels_last: bool) -> None:
    torch.manual_seed(0)
    model = build_model("adam-mnv2").eval()
    randomise_batch_norms(model.decoder)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    image = torch.rand(1, 3, 64, 96).contiguous(memory_format=layout)
    encoded = model.encode(image)
    z = torch.rand(1, 256, 4, 6).contiguous(memory_format=layout)
    output = model.decode(z, encoded, image)
    quarter, hidden, fine = concatenating_decoder(model.decoder, z, encoded.skips, image)
    torch.testing.assert_close(output.hidden, hidden, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(output.alpha, fine[:, :1].sigmoid(), atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(output.mask_logits, model.decoder.mask_head(quarter), atol=TOLERANCE, rtol=0)
    assert set(model.state_dict()) == set(build_model("adam-mnv2").state_dict())  # weights still load


@pytest.mark.parametrize(("height", "width"), [(1, 5), (2, 2), (17, 30)])
def test_the_box_filter_is_the_mean_over_each_window_inside_the_image(height: int, width: int) -> None:
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    expected = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(box_filter(x), expected, atol=TOLERANCE, rtol=0)


def plain_guided_filter(refiner, image, low_image, low_foreground, low_alpha, low_hidden):
    """The deep guided filter as first written: pooled statistics, a full-size guide, one fused step."""

    def mean(x):
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    x, y = guide(low_image), torch.cat([low_foreground, low_alpha], 1)
    mean_x, mean_y = mean(x), mean(y)
    a = refiner.predict_a(
        torch.cat([mean(x * y) - mean_x * mean_y, mean(x * x) - mean_x * mean_x, low_hidden], 1)
    )
    b = mean_y - a * mean_x
    size = image.shape[-2:]
    a = F.interpolate(a, size, mode="bilinear", align_corners=False)
    b = F.interpolate(b, size, mode="bilinear", align_corners=False)
    out = torch.addcmul(b, a, guide(image)).clamp(0, 1)
    return out[:, :3], out[:, 3:]


@pytest.mark.parametrize("fused", [False, True])
@torch.inference_mode()
def test_the_guided_filter_keeps_its_outputs_and_runs_in_float32_under_autocast(fused: bool) -> None:
    torch.manual_seed(0)
    refiner = DeepGuidedFilter(8, 8, fused=fused).eval()
    randomise_batch_norms(refiner)
    generator = torch.Generator().manual_seed(2)
    image = torch.rand(2, 3, 75, 101, generator=generator)
    low = [torch.rand(2, c, 30, 40, generator=generator) for c in (3, 3, 1, 8)]
    expected = plain_guided_filter(refiner, image, *low)
    refiner.to(memory_format=torch.channels_last)
    nhwc = [t.contiguous(memory_format=torch.channels_last) for t in (image, *low)]
    result = refiner(*nhwc)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = refiner(*nhwc)
    for got, autocast_got, want in zip(result, under_autocast, expected, strict=True):
        torch.testing.assert_close(got, want, atol=TOLERANCE, rtol=0)
        assert autocast_got.dtype == torch.float32
        torch.testing.assert_close(autocast_got, got, atol=0, rtol=0)
    # PyTorch's operators run on planes; the kernel writes the foreground channels-last, as writers take it
    layout = torch.channels_last if fused else torch.contiguous_format
    assert result[0].is_contiguous(memory_format=layout) and result[1].is_contiguous()


@pytest.mark.parametrize(("height", "width", "threads"), [(75, 101, 1), (61, 40, 3), (1, 7, 2), (9, 2, 2)])
@torch.inference_mode()
def test_the_guided_filter_kernel_reads_uint8_frames_as_pytorch_reads_them_in_float(
    height: int, width: int, threads: int
) -> None:
    torch.manual_seed(0)
    refiner = DeepGuidedFilter(8, 8).eval()
    randomise_batch_norms(refiner)
    generator = torch.Generator().manual_seed(3)
    frame = torch.randint(0, 256, (2, height, width, 3), dtype=torch.uint8, generator=generator)
    low = [torch.rand(2, c, (height + 1) // 2, (width + 2) // 3, generator=generator) for c in (3, 3, 1, 8)]
    expected = plain_guided_filter(refiner, frame.permute(0, 3, 1, 2).float() / 255, *low)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # rows split over this many threads
    try:
        got = refiner(frame.permute(0, 3, 1, 2), *low)
    finally:
        torch.set_num_threads(previous)
    for tensor, want in zip(got, expected, strict=True):
        torch.testing.assert_close(tensor, want, atol=TOLERANCE, rtol=0)


def test_the_guided_filter_runs_pytorchs_operators_where_gradients_flow() -> None:
    refiner = DeepGuidedFilter(8, 8)
    low = [torch.rand(1, c, 10, 12) for c in (3, 3, 1, 8)]
    foreground, alpha = refiner(torch.rand(1, 3, 30, 36), *low)
    (foreground.mean() + alpha.mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in refiner.parameters())


@torch.inference_mode()
def test_a_session_gives_the_same_mattes_channels_last_as_planar_for_downsampled_frames() -> None:
    torch.manual_seed(0)
    model = build_model("adam-tiny").eval()
    randomise_batch_norms(model.refiner)
    frames = [torch.rand(1, 3, 120, 200, generator=torch.Generator().manual_seed(t)) for t in range(3)]
    planar = AdamSession(model, channels_last=False, downsample_ratio=0.5)
    outputs = [planar.step(frame) for frame in frames]
    nhwc = AdamSession(prepare_network(model, channels_last=True), channels_last=True, downsample_ratio=0.5)
    for frame, (alpha, foreground) in zip(frames, outputs, strict=True):
        got_alpha, got_foreground = nhwc.step(frame.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(got_alpha, alpha, atol=TOLERANCE, rtol=0)
        torch.testing.assert_close(got_foreground, foreground, atol=TOLERANCE, rtol=0)


@torch.inference_mode()
def test_folded_batch_norms_keep_both_networks_outputs_and_their_weights_are_not_saved(tmp_path) -> None:
    torch.manual_seed(0)
    adam, msgvim = build_model("adam-tiny").eval(), build_model("msgvim-tiny").eval()
    generator = torch.Generator().manual_seed(4)
    frame = torch.rand(1, 3, 64, 96, generator=generator)
    masks = (torch.rand(2, 1, 1, 64, 96, generator=generator) > 0.5).float()
    for network in (adam, msgvim):
        randomise_batch_norms(network)
    expected = adam(frame)[0].alpha, msgvim(frame, masks[0], masks[1]).alpha
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in adam.modules())
    assert fold_batch_norms(adam) == norms  # every AdaM BatchNorm follows a convolution in a Sequential
    assert fold_batch_norms(msgvim) > 0
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in adam.modules())
    got = adam(frame)[0].alpha, msgvim(frame, masks[0], masks[1]).alpha
    for tensor, want in zip(got, expected, strict=True):
        torch.testing.assert_close(tensor, want, atol=TOLERANCE, rtol=0)
    with pytest.raises(ValueError, match="folded"):
        save_weights(adam, tmp_path / "folded.safetensors", "adam-tiny")
    assert not (tmp_path / "folded.safetensors").exists()


@pytest.mark.parametrize("name", available_models())
@torch.inference_mode()
def test_every_configuration_is_prepared_without_changing_its_outputs(name: str) -> None:
    # msgvim-r34's spectrally normalised convolutions compute their weight at each call: they keep their
    # BatchNorms (folding them failed)
    torch.manual_seed(0)
    network = build_model(name).eval()
    randomise_batch_norms(network)
    generator = torch.Generator().manual_seed(5)
    frame = torch.rand(1, 3, 64, 96, generator=generator)
    masks = (torch.rand(2, 1, 1, 64, 96, generator=generator) > 0.5).float()

    def alpha(model: torch.nn.Module) -> torch.Tensor:
        return model(frame)[0].alpha if name.startswith("adam") else model(frame, masks[0], masks[1]).alpha

    expected = alpha(network)
    torch.testing.assert_close(alpha(prepare_network(network)), expected, atol=TOLERANCE, rtol=0)
    assert network.batch_norms_folded


@torch.inference_mode()
def test_decoded_uint8_frames_give_the_mattes_of_their_float_copies() -> None:
    torch.manual_seed(0)
    model = build_model("adam-tiny").eval()
    randomise_batch_norms(model.refiner)
    frames = [np.random.default_rng(t).integers(0, 256, (90, 160, 3), dtype=np.uint8) for t in range(3)]
    floats = [torch.from_numpy(frame).permute(2, 0, 1).float() / 255 for frame in frames]
    # at full size the network sees the same values
    as_uint8, as_float = AdamSession(model), AdamSession(model)
    for frame, copy in zip(frames, floats, strict=True):
        for got, want in zip(as_uint8.step(frame), as_float.step(copy), strict=True):
            torch.testing.assert_close(got, want, atol=TOLERANCE, rtol=0)
    # downsampled, the small frame is resized as uint8: within one level of the float resize
    geometry = FrameGeometry.for_size(90, 160, 0.5)
    resized = geometry.downsample(torch.from_numpy(frames[0]).permute(2, 0, 1)[None])
    assert (resized - geometry.downsample(floats[0][None])).abs().max() <= 1 / 255
    # and the guided filter's kernel reads the uint8 frame as PyTorch's filter reads it
    mattes = {}
    for fused in (True, False):
        model.refiner.fused = fused
        session = AdamSession(model, downsample_ratio=0.5)
        mattes[fused] = [session.step(frame) for frame in frames]
    for got, want in zip(mattes[True], mattes[False], strict=True):
        torch.testing.assert_close(got, want, atol=TOLERANCE, rtol=0)
