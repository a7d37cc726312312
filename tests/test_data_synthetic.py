"""The synthetic clip generator: determinism, ranges, the matting equation, soft edges, occlusion."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vidmatte.data.synthetic.background import render_background, sample_background
from vidmatte.data.synthetic.clips import ClipSpec, generate_clip, plan_figures
from vidmatte.data.synthetic.figure import pose_at, render_figure, sample_figure
from vidmatte.io.composite import composite, composite_u8, stack_layers
from vidmatte.io.frames import to_u8

TINY = ClipSpec(frames=4, width=64, height=48)


@pytest.fixture(scope="module")
def multi_clips() -> list:
    spec = ClipSpec(frames=10, width=64, height=48, instances=(2, 3))
    return [generate_clip(seed, spec) for seed in range(3)]


def test_same_seed_same_clip_and_different_seed_different_clip() -> None:
    first, again, other = generate_clip(7, TINY), generate_clip(7, TINY), generate_clip(8, TINY)
    for name in ("com", "fgr", "bgr", "pha", "alphas"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.com, other.com)


def test_shapes_dtypes_and_ranges(multi_clips: list) -> None:
    for clip in [generate_clip(1, TINY), *multi_clips]:
        frames, height, width = clip.pha.shape
        assert clip.com.shape == clip.fgr.shape == clip.bgr.shape == (frames, height, width, 3)
        assert clip.alphas.shape[1:] == (frames, height, width)
        for array in (clip.com, clip.fgr, clip.bgr, clip.pha, clip.alphas):
            assert array.dtype == np.float32
            assert array.min() >= 0.0 and array.max() <= 1.0


def test_composite_is_the_matting_equation_and_alphas_sum_to_pha(multi_clips: list) -> None:
    for clip in multi_clips:
        a = clip.pha[..., None]
        np.testing.assert_allclose(clip.com, clip.fgr * a + clip.bgr * (1 - a), atol=1e-5)
        np.testing.assert_allclose(clip.alphas.sum(axis=0), clip.pha, atol=1e-5)


def test_the_one_pass_uint8_composite_equals_numpys_rounded() -> None:
    rng = np.random.default_rng(0)
    fgr = rng.uniform(-0.1, 1.1, (37, 53, 3)).astype(np.float32)  # clipped like to_u8
    pha = rng.random((37, 53), dtype=np.float32)
    pha[:4] = rng.integers(0, 2, (4, 53))  # exactly 0 and 1 too
    image = rng.random((37, 53, 3), dtype=np.float32)
    colour = np.broadcast_to(np.array([0.0, 0.69, 0.25], np.float32), (37, 53, 3))  # as a plain colour
    for bgr in (image, colour, image[:, ::-1]):
        got = composite_u8(fgr, pha, bgr)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, to_u8(composite(fgr, pha, bgr)))


def test_every_figure_has_at_least_five_percent_partial_alpha(multi_clips: list) -> None:
    for clip in [generate_clip(seed, TINY) for seed in range(2)] + multi_clips:
        for alpha in clip.alphas:
            partial = ((alpha > 0) & (alpha < 1)).sum()
            assert partial / max((alpha > 0).sum(), 1) >= 0.05


def test_partial_alpha_holds_for_large_figures_too() -> None:
    # at 512x288 the silhouette is a smaller share of a figure's pixels than at thumbnail size
    for seed in range(6):
        rng = np.random.default_rng(seed)
        figure = sample_figure(rng, 250.0, np.array([256.0, 150.0]), np.array([0.0, 0.0]))
        alpha, _, _ = render_figure(figure, 3.0, 288, 512)
        assert ((alpha > 0) & (alpha < 1)).sum() / (alpha > 0).sum() >= 0.05


def test_figures_have_thin_strands_and_a_solid_body() -> None:
    rng = np.random.default_rng(3)
    figure = sample_figure(rng, 250.0, np.array([256.0, 150.0]), np.array([2.0, 0.0]))
    alpha, premultiplied, window = render_figure(figure, 0.0, 288, 512)
    assert (alpha > 0.999).sum() > 2000  # an opaque torso, not a cloud
    assert ((alpha > 0.02) & (alpha < 0.5)).sum() > 200  # faint strands and soft edges
    assert premultiplied.shape == (*alpha.shape, 3)
    assert alpha.shape == (window.y1 - window.y0, window.x1 - window.x0)
    assert (premultiplied <= alpha[..., None] + 1e-6).all()
    assert premultiplied[alpha > 0.999].std(axis=0).max() > 0.02  # textured, not flat


def test_multi_instance_clips_occlude_and_move(multi_clips: list) -> None:
    for clip in multi_clips:
        assert clip.alphas.shape[0] in (2, 3)
        assert (clip.hidden > 0.05).any()  # one figure passes behind another
        centres = [
            (alpha * np.arange(alpha.shape[-1])).sum(axis=(1, 2)) / np.maximum(alpha.sum(axis=(1, 2)), 1e-6)
            for alpha in clip.alphas
        ]
        assert max(np.ptp(c) for c in centres) > 1.0  # someone walks


def test_figures_enter_or_leave_the_frame_in_crowded_clips() -> None:
    spec = ClipSpec(frames=40, width=64, height=36, instances=(4, 4))
    clip = generate_clip(0, spec)
    area = clip.alphas.sum(axis=(2, 3))
    assert ((area < 0.5).any(axis=1) & (area > 1).any(axis=1)).any()


def test_far_views_have_small_figures_and_leave_other_clips_unchanged() -> None:
    near = ClipSpec(frames=2, width=128, height=72, instances=(2, 3))
    far = ClipSpec(frames=2, width=128, height=72, instances=(2, 3), far=1.0)
    for seed in range(3):
        assert np.array_equal(generate_clip(seed, near).com, generate_clip(seed, replace(near, far=0.0)).com)
        near_heights = [f.height for f in plan_figures(np.random.default_rng(seed), near, 3)]
        far_heights = [f.height for f in plan_figures(np.random.default_rng(seed), far, 3)]
        assert max(far_heights) <= 0.5 * 0.85 * 72 < 0.45 * 72 <= min(near_heights)


def test_close_ups_have_one_large_figure_and_leave_other_clips_unchanged() -> None:
    usual = ClipSpec(frames=2, width=128, height=72, instances=(1, 1))
    close = replace(usual, close=1.0)
    crowd = ClipSpec(frames=2, width=128, height=72, instances=(2, 3))
    for seed in range(3):
        for spec, other in ((usual, replace(usual, close=0.0)), (crowd, replace(crowd, close=1.0))):
            assert np.array_equal(generate_clip(seed, spec).com, generate_clip(seed, other).com)
        (usual_figure,) = plan_figures(np.random.default_rng(seed), usual, 1)
        (close_figure,) = plan_figures(np.random.default_rng(seed), close, 1)
        assert usual_figure.height <= 1.5 * 72 < 2 * 72 <= close_figure.height <= 4 * 72
        # head and shoulders: the head in view, the frame's bottom edge cutting a wider torso
        pha, usual_pha = generate_clip(seed, close).pha[0], generate_clip(seed, usual).pha[0]
        assert pha[: 72 // 3].any() and (pha[-1] > 0.5).mean() > (usual_pha[-1] > 0.5).mean()


def test_moving_camera_moves_the_background_and_static_camera_does_not_pan() -> None:
    rng = np.random.default_rng(0)
    moving = sample_background(rng, 48, 64, 20, moving=True)
    still = sample_background(rng, 48, 64, 20, moving=False)
    assert np.abs(moving.drift).sum() > 0 and np.abs(still.drift).sum() == 0
    frame0, frame19 = (render_background(moving, t, 48, 64) for t in (0.0, 19.0))
    assert frame0.shape == (48, 64, 3) and np.abs(frame0 - frame19).mean() > 0.005


def test_lookalike_background_takes_the_foreground_palette() -> None:
    palette = np.array([[0.9, 0.1, 0.1], [0.8, 0.2, 0.1], [0.7, 0.1, 0.2]], np.float32)
    distances = []
    for seed in range(4):
        background = sample_background(np.random.default_rng(seed), 48, 64, 2, moving=False, palette=palette)
        distances.append(np.abs(background.canvas.reshape(-1, 3).mean(0) / 255 - palette.mean(0)).mean())
    assert np.mean(distances) < 0.2


def test_stack_layers_matches_explicit_over() -> None:
    rng = np.random.default_rng(0)
    alphas = rng.random((2, 5, 6)).astype(np.float32)
    colours = rng.random((2, 5, 6, 3)).astype(np.float32)
    layered = stack_layers(alphas, colours)
    a0, a1 = alphas
    np.testing.assert_allclose(layered.visible[0], a0 * (1 - a1), atol=1e-6)
    np.testing.assert_allclose(layered.visible[1], a1, atol=1e-6)
    np.testing.assert_allclose(layered.pha, a1 + a0 * (1 - a1), atol=1e-6)
    background = rng.random((5, 6, 3)).astype(np.float32)
    expected = colours[1] * a1[..., None] + (
        colours[0] * a0[..., None] + background * (1 - a0[..., None])
    ) * (1 - a1[..., None])
    np.testing.assert_allclose(composite(layered.fgr, layered.pha, background), expected, atol=1e-5)


@pytest.mark.parametrize(
    "bad", [dict(frames=0), dict(width=4), dict(instances=(3, 2)), dict(instances=(0, 1))]
)
def test_clip_spec_rejects_impossible_requests(bad: dict) -> None:
    with pytest.raises(ValueError):
        ClipSpec(**bad)


def test_two_figure_clips_often_have_one_walk_in_or_out_of_view() -> None:
    spec = ClipSpec(frames=50, width=512, height=288, instances=(2, 2))
    outside = 0
    for seed in range(20):
        figures = plan_figures(np.random.default_rng(seed), spec, 2)
        for figure in figures:
            xs = [pose_at(figure, t).pelvis[0] for t in (0.0, 49.0)]
            outside += any(x < -0.15 * figure.height or x > 512 + 0.15 * figure.height for x in xs)
    assert outside >= 4


def test_fast_figures_are_not_clipped_by_their_window() -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        figure = sample_figure(rng, 200.0, np.array([256.0, 170.0]), np.array([12.0, 0.0]))
        alpha, _, window = render_figure(figure, 3.0, 288, 512)
        inner_borders = [
            alpha[0] if window.y0 > 0 else 0, alpha[-1] if window.y1 < 288 else 0,
            alpha[:, 0] if window.x0 > 0 else 0, alpha[:, -1] if window.x1 < 512 else 0,
        ]  # fmt: skip
        assert max(np.max(b) for b in inner_borders) == 0


def test_every_instance_is_in_view_for_most_of_a_clip() -> None:
    # a ground-truth instance that is hardly ever visible would make even a perfect prediction
    # fail VIMQ's per-clip IoU test
    for frames, seed in ((4, 0), (4, 1), (12, 2)):
        clip = generate_clip(seed, ClipSpec(frames=frames, width=64, height=48, instances=(4, 4)))
        assert ((clip.alphas > 0.5).any(axis=(2, 3)).mean(axis=1) >= 0.5).all()
