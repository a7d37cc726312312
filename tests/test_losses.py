"""Matting losses on hand-made tensors."""

import math

import pytest
import torch

from vidmatte.models.adam.model import AdamOutput
from vidmatte.training.losses import (
    AdamLossWeights,
    adam_loss,
    alpha_loss,
    composition_loss,
    foreground_loss,
    l1_loss,
    laplacian_loss,
    laplacian_pyramid,
    mask_loss,
)


def test_l1_is_the_mean_absolute_difference():
    pred = torch.tensor([0.0, 0.5, 1.0, 0.25])
    true = torch.tensor([1.0, 0.5, 0.0, 0.75])
    assert l1_loss(pred, true).item() == pytest.approx((1 + 0 + 1 + 0.5) / 4)


def test_weighted_l1_averages_over_the_weighted_pixels_only():
    pred = torch.tensor([0.0, 0.5, 1.0, 0.25])
    true = torch.tensor([1.0, 0.5, 0.0, 0.75])
    weight = torch.tensor([0.0, 1.0, 0.0, 1.0])
    assert l1_loss(pred, true, weight).item() == pytest.approx(0.25)
    assert l1_loss(pred, true, torch.zeros(4)).item() == 0


def test_pyramid_levels_halve_and_round_up():
    levels = laplacian_pyramid(torch.rand(2, 1, 37, 20))
    assert [tuple(level.shape[-2:]) for level in levels] == [(37, 20), (19, 10), (10, 5), (5, 3), (3, 2)]


def test_pyramid_of_a_constant_is_zero_so_offsets_cost_nothing():
    constant = torch.full((1, 1, 23, 31), 0.7)
    assert all(level.abs().max() < 1e-6 for level in laplacian_pyramid(constant))
    x = torch.rand(1, 1, 32, 32)
    assert laplacian_loss(x + 0.3, x).item() == pytest.approx(0, abs=1e-6)


def test_laplacian_loss_weights_level_i_by_two_to_the_i_over_five():
    pred, true = torch.rand(3, 1, 40, 40), torch.rand(3, 1, 40, 40)
    # the pyramid is linear, so each level of the difference is the difference of the levels
    levels = laplacian_pyramid(pred - true)
    expected = sum(2**i / 5 * level.abs().mean() for i, level in enumerate(levels))
    assert laplacian_loss(pred, true).item() == pytest.approx(expected.item(), rel=1e-5)
    # a single-pixel spike at (16, 16): the blur keeps 6/16 of it per axis at 16 and 1/16 at 14;
    # subsampling keeps both (down[8], down[7]) and bilinear upsampling reads output 16 at input
    # coordinate 7.75, i.e. 0.25 * down[7] + 0.75 * down[8] per axis
    spike = torch.zeros(1, 1, 32, 32)
    spike[..., 16, 16] = 1
    per_axis = (0.25 * 1 + 0.75 * 6) / 16
    assert laplacian_pyramid(spike)[0][..., 16, 16].item() == pytest.approx(1 - per_axis**2)


def test_laplacian_loss_accepts_clips():
    pred, true = torch.rand(2, 3, 1, 16, 16), torch.rand(2, 3, 1, 16, 16)
    assert laplacian_loss(pred, true).item() == pytest.approx(
        laplacian_loss(pred.flatten(0, 1), true.flatten(0, 1)).item()
    )


def test_mask_loss_is_log_two_for_undecided_logits_and_small_for_confident_ones():
    alpha = torch.zeros(1, 1, 8, 8)
    alpha[..., :, 4:] = 1
    assert mask_loss(torch.zeros(1, 2, 8, 8), alpha).item() == pytest.approx(math.log(2))
    confident = torch.cat([(1 - alpha) * 20, alpha * 20], 1)
    assert mask_loss(confident, alpha).item() < 1e-6
    assert mask_loss(confident, 1 - alpha).item() == pytest.approx(20, rel=1e-3)


def test_mask_loss_resizes_the_target_to_the_logits():
    alpha = torch.zeros(1, 1, 16, 16)
    alpha[..., :, 8:] = 0.8  # above the 0.5 threshold
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 1, :, 2:] = 30
    logits[:, 0, :, :2] = 30
    assert mask_loss(logits, alpha).item() < 1e-6


def test_foreground_loss_ignores_pixels_outside_the_matte():
    alpha = torch.tensor([[[[0.0, 0.5], [1.0, 0.0]]]])
    true = torch.zeros(1, 3, 2, 2)
    pred = true.clone()
    pred[..., 0, 0] = 1.0  # alpha 0: ignored
    pred[..., 1, 1] = 1.0  # alpha 0: ignored
    assert foreground_loss(pred, true, alpha).item() == 0
    pred[..., 0, 1] = 0.3
    assert foreground_loss(pred, true, alpha).item() == pytest.approx(0.3 / 2)


def test_composition_loss():
    foreground, background = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    alpha = torch.full((1, 1, 2, 2), 0.5)
    assert composition_loss(alpha, foreground, background, torch.full((1, 3, 2, 2), 0.5)).item() == 0
    assert composition_loss(alpha, foreground, background, torch.zeros(1, 3, 2, 2)).item() == 0.5


def test_alpha_loss_resizes_the_truth_to_a_coarse_prediction():
    true = torch.zeros(1, 1, 16, 16)
    true[..., :8, :] = 1
    coarse = torch.zeros(1, 1, 4, 4)
    coarse[..., :2, :] = 1
    assert alpha_loss(coarse, true).item() == pytest.approx(0, abs=1e-6)
    assert alpha_loss(1 - coarse, true).item() > 1


def output_for(alpha, foreground):
    logits = torch.cat([(1 - alpha) * 20, alpha * 20], 2)[..., ::4, ::4]
    return AdamOutput(alpha, foreground, alpha[..., ::4, ::4], logits)


def test_adam_loss_is_zero_for_a_perfect_prediction_and_sums_weighted_terms():
    alpha = torch.zeros(1, 2, 1, 16, 16)
    alpha[..., 4:12, 4:12] = 1
    foreground = torch.rand(1, 2, 3, 16, 16)
    total, terms = adam_loss(output_for(alpha, foreground), alpha, foreground)
    assert set(terms) == {"mask", "coarse", "fine", "foreground"}
    assert total.item() < 1e-5

    wrong = output_for(1 - alpha, foreground * 0)
    weights = AdamLossWeights(mask=2.0, coarse=0.5, fine=3.0, foreground=0.25)
    total, terms = adam_loss(wrong, alpha, foreground, weights)
    expected = 2 * terms["mask"] + 0.5 * terms["coarse"] + 3 * terms["fine"] + 0.25 * terms["foreground"]
    assert total.item() == pytest.approx(expected.item())
    assert terms["fine"].item() > 1 and terms["mask"].item() > 1


def test_zero_weights_skip_their_terms():
    alpha = torch.rand(1, 1, 1, 8, 8)
    total, terms = adam_loss(
        output_for(alpha, torch.rand(1, 1, 3, 8, 8)), alpha, None, AdamLossWeights(coarse=0, fine=0)
    )
    assert set(terms) == {"mask"}
    assert total.item() == pytest.approx(terms["mask"].item())
