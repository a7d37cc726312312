"""MSG-VIM network: shapes, ranges, chunked state, gradients, parameter count, refinement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from vidmatte.models.backbones.resnet import ResNetD
from vidmatte.models.msgvim.factory import MSGVIM_R34, msgvim_tiny
from vidmatte.models.msgvim.refinement import ProgressiveRefinement, ellipse_kernel
from vidmatte.models.msgvim.temporal_guidance import TemporalFeatureGuidance, TemporalState
from vidmatte.models.registry import build_model


def _clip(batch: int, time: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(batch, time, 3, height, width, generator=generator)
    target = (torch.rand(batch, time, 1, height, width, generator=generator) > 0.6).float()
    reference = (torch.rand(batch, time, 1, height, width, generator=generator) > 0.6).float() * (1 - target)
    return rgb, target, reference


def _randomise_batch_norms(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm a non-zero scale (the residual branches start at zero) and random statistics."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data = 0.5 + torch.rand(module.num_features, generator=generator)
            module.bias.data = 0.1 * torch.randn(module.num_features, generator=generator)
            module.running_mean = 0.1 * torch.randn(module.num_features, generator=generator)
            module.running_var = 0.5 + torch.rand(module.num_features, generator=generator)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (37, 53), (8, 100)])
def test_any_size_gives_alphas_in_unit_range(height, width):
    model = msgvim_tiny().eval()
    _randomise_batch_norms(model)
    with torch.no_grad():
        out = model(*_clip(2, 3, height, width))
    for alpha in (out.alpha, out.alpha_os1, out.alpha_os4, out.alpha_os8):
        assert alpha.shape == (2, 3, 2, height, width)
        assert torch.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1
    padded = (-(-height // 32) * 32 // 2, -(-width // 32) * 32 // 2)
    assert out.state.hidden.shape == (2, 4, *padded)


def test_single_frames_are_accepted():
    model = msgvim_tiny().eval()
    rgb, target, reference = (x[:, 0] for x in _clip(2, 1, 32, 48))
    with torch.no_grad():
        out = model(rgb, target, reference)
    assert out.alpha.shape == (2, 2, 32, 48)


@pytest.mark.parametrize("chunks", [(2, 3), (1, 1, 1, 1, 1), (4, 1)])
def test_carrying_the_state_across_chunks_equals_one_long_chunk(chunks):
    model = msgvim_tiny().eval()
    _randomise_batch_norms(model)
    rgb, target, reference = _clip(2, sum(chunks), 40, 48, seed=1)
    with torch.no_grad():
        whole = model(rgb, target, reference)
        state, pieces, start = None, [], 0
        for length in chunks:
            sl = slice(start, start + length)
            out = model(rgb[:, sl], target[:, sl], reference[:, sl], state)
            pieces.append(out.alpha_os1)
            state, start = out.state, start + length
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole.alpha_os1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.hidden, whole.state.hidden, atol=1e-5, rtol=1e-5)


def test_the_state_changes_the_result():
    model = msgvim_tiny().eval()
    _randomise_batch_norms(model)
    rgb, target, reference = _clip(1, 4, 32, 32, seed=2)
    with torch.no_grad():
        first = model(rgb[:, :2], target[:, :2], reference[:, :2])
        carried = model(rgb[:, 2:], target[:, 2:], reference[:, 2:], first.state)
        fresh = model(rgb[:, 2:], target[:, 2:], reference[:, 2:])
    assert (carried.alpha_os1 - fresh.alpha_os1).abs().max() > 1e-4


def test_bfloat16_autocast_gives_float32_alphas_near_float32():
    model = msgvim_tiny().eval()
    _randomise_batch_norms(model)
    clip = _clip(1, 3, 40, 48, seed=4)
    with torch.no_grad():
        exact = model(*clip)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(*clip)
    # made from the logits in float32: not rounded to bfloat16's steps of 1/512 near 0 and 1
    assert all(a.dtype == torch.float32 for a in (low.alpha, low.alpha_os1, low.alpha_os4, low.alpha_os8))
    torch.testing.assert_close(low.alpha_os1, exact.alpha_os1, atol=0.03, rtol=0)


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_every_parameter_receives_a_gradient(spectral_norm):
    model = msgvim_tiny(spectral_norm=spectral_norm).train()
    _randomise_batch_norms(model)
    rgb, target, reference = _clip(2, 2, 32, 64, seed=3)
    out = model(rgb, target, reference, TemporalState(torch.rand(2, 4, 16, 32)))
    truth = torch.cat([target, reference], dim=2)
    loss = sum((alpha - truth).abs().mean() for alpha in (out.alpha_os1, out.alpha_os4, out.alpha_os8))
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    if spectral_norm:
        assert any("parametrizations" in name for name, _ in model.named_parameters())


def test_paper_configuration_has_the_reference_parameter_count():
    model = build_model("msgvim-r34")
    count = sum(p.numel() for p in model.parameters())
    assert count == pytest.approx(29.6e6, abs=0.05e6)  # the reference implementation: 29.6 M
    assert MSGVIM_R34.encoder_blocks == (3, 4, 4, 2) and MSGVIM_R34.decoder_blocks == (2, 3, 3, 2)
    assert sum(p.numel() for p in build_model("msgvim-small").parameters()) < count / 5


def test_encoder_feature_resolutions():
    backbone = ResNetD(5, 8, (8, 16, 16, 32), (1, 1, 1, 1))
    features = backbone(torch.rand(1, 5, 64, 96))
    assert [f.shape[-2:] for f in features] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]
    assert backbone.stem[0].weight[:, 3:].abs().sum() == 0  # guidance channels start neutral


def test_temporal_guidance_follows_its_equations():
    tfg = TemporalFeatureGuidance(2)
    features = torch.rand(1, 3, 5, 6, 6)
    out, state = tfg(features)
    guided = features[:, :, 3:]
    h0 = torch.tanh(tfg.input_to_hidden(guided[:, 0]))
    h1 = torch.tanh(tfg.input_to_hidden(guided[:, 1]) + tfg.hidden_to_hidden(h0))
    torch.testing.assert_close(out[:, 0, 3:], h0)
    torch.testing.assert_close(out[:, 1, 3:], h1)
    torch.testing.assert_close(out[:, :, :3], features[:, :, :3])  # the other channels pass through
    torch.testing.assert_close(state.hidden, out[:, 2, 3:])


@pytest.mark.parametrize("size", [1, 2, 3, 6, 7, 15, 16, 29])
def test_ellipse_kernel_equals_opencv(size):
    expected = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    np.testing.assert_array_equal(ellipse_kernel(size).numpy().astype(np.uint8), expected)


def test_progressive_refinement_replaces_only_the_dilated_uncertain_band():
    from scipy.ndimage import binary_dilation

    refine = ProgressiveRefinement((5, 3))
    os8 = torch.zeros(1, 1, 16, 16)
    os8[..., 8:, :] = 1
    os8[..., 4, 4] = 0.5  # one uncertain pixel
    os4 = torch.full_like(os8, 0.25)  # uncertain everywhere, so its whole patch is refined again
    os1 = torch.full_like(os8, 0.75)
    alpha = refine(os8, os4, os1)[0, 0].numpy()
    seed = np.zeros((16, 16), bool)
    seed[4, 4] = True
    first = binary_dilation(seed, ellipse_kernel(5).numpy().astype(bool))
    second = binary_dilation(first, ellipse_kernel(3).numpy().astype(bool))
    expected = np.where(second, 0.75, os8[0, 0].numpy())
    np.testing.assert_array_equal(alpha, expected)
    assert 0 < first.sum() < second.sum() < 40


@pytest.mark.parametrize("size", [3, 6, 7, 15])
def test_dilation_equals_opencv(size):
    from vidmatte.models.msgvim.refinement import dilate

    mask = np.random.default_rng(size).random((2, 3, 23, 31)) > 0.97
    mask[0, 0, 0, 0] = mask[1, 2, -1, -1] = True  # corners: nothing may leak from outside the image
    kernel = ellipse_kernel(size)
    result = dilate(torch.from_numpy(mask), kernel).numpy()
    for n in range(2):
        for c in range(3):
            expected = cv2.dilate(mask[n, c].astype(np.uint8), kernel.numpy().astype(np.uint8))
            np.testing.assert_array_equal(result[n, c], expected.astype(bool))


def test_a_state_of_another_size_is_refused():
    model = msgvim_tiny().eval()
    with torch.no_grad():
        state = model(*_clip(1, 2, 32, 32)).state
        with pytest.raises(ValueError, match="temporal state of shape"):
            model(*_clip(1, 2, 64, 32), state)
