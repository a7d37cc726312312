"""AdaM online session and bi-directional offline inference."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.data import astronaut

from vidmatte import build_model, load_model
from vidmatte.errors import VidmatteError
from vidmatte.inference.adam import AdamSession, BidirectionalSession, GivenMask, matte_bidirectional
from vidmatte.inference.torch_engine import prepare_network


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return prepare_network(build_model("adam-tiny"))  # as the engine prepares it


def frames(length=6, height=64, width=64, seed=0):
    return list(torch.rand(length, 3, height, width, generator=torch.Generator().manual_seed(seed)))


def run(session, clip):
    return [session.step(frame) for frame in clip]


@pytest.mark.slow
def test_memory_stays_bounded_over_100_frames(model):
    session = AdamSession(model)
    for frame in frames(100, 32, 32):
        alpha, foreground = session.step(frame)
        assert len(session.memory) <= 1 + model.memory_capacity
    assert len(session.memory) == 1 + model.memory_capacity
    assert alpha.shape == (1, 1, 32, 32) and foreground.shape == (1, 3, 32, 32)


def test_online_output_does_not_depend_on_later_frames(model):
    clip = frames(6)
    changed = clip[:3] + frames(3, seed=1)
    original, altered = run(AdamSession(model), clip), run(AdamSession(model), changed)
    for t in range(3):
        assert torch.equal(original[t][0], altered[t][0]) and torch.equal(original[t][1], altered[t][1])
    assert not torch.equal(original[3][0], altered[3][0])


def test_session_equals_the_model_on_the_whole_clip(model):
    clip = frames(4)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 20:40] = 255
    stepped = run(AdamSession(model, first_mask=mask), clip)
    with torch.no_grad():
        whole, _ = model(
            torch.stack(clip)[None], first_mask=torch.from_numpy(mask / 255.0).float()[None, None]
        )
    torch.testing.assert_close(torch.cat([a for a, _ in stepped]), whole.alpha[0], atol=1e-5, rtol=1e-4)


def test_segmentor_is_called_once_on_the_first_frame(model):
    calls = []

    def segmentor(frame):
        calls.append(frame.shape)
        return torch.ones(frame.shape[0], 1, *frame.shape[-2:])

    run(AdamSession(model, segmentor=segmentor), frames(3, 40, 56))
    assert calls == [(1, 3, 40, 56)]


def test_own_mask_head_is_the_default_segmentor(model):
    clip = frames(2)
    default = run(AdamSession(model), clip)
    with torch.no_grad():
        own_mask = model.segment(clip[0][None])
    explicit = run(AdamSession(model, first_mask=own_mask), clip)
    assert own_mask.shape == (1, 1, 64, 64) and own_mask.min() >= 0 and own_mask.max() <= 1
    for (a, _), (b, _) in zip(default, explicit, strict=True):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=0)


def test_uint8_frames_and_hd_auto_downsampling(model):
    frame = (np.random.default_rng(0).random((600, 1000, 3)) * 255).astype(np.uint8)
    session = AdamSession(model)
    alpha, foreground = session.step(frame)
    assert alpha.shape == (1, 1, 600, 1000) and foreground.shape == (1, 3, 600, 1000)
    assert alpha.dtype == torch.float32 and alpha.min() >= 0 and alpha.max() <= 1
    assert session.memory.long_term.key.shape[1] == (320 // 16) * (512 // 16)


@pytest.mark.parametrize("downsample_ratio", [1.0, 0.5])
def test_bfloat16_session_is_finite_and_close(model, downsample_ratio):
    clip = frames(3)
    reference = run(AdamSession(model, downsample_ratio=downsample_ratio), clip)
    low = run(AdamSession(model, precision="bf16", downsample_ratio=downsample_ratio), clip)
    for (a, _), (b, _) in zip(reference, low, strict=True):
        assert b.dtype == torch.float32 and torch.isfinite(b).all()
        assert (a - b).abs().mean() < 0.05


def test_channels_last_gives_the_same_mattes(model):
    clip = frames(3, 48, 80)
    planar = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    nhwc = run(AdamSession(model, channels_last=True, downsample_ratio=0.5), clip)
    nchw = run(AdamSession(planar, channels_last=False, downsample_ratio=0.5), clip)
    for (a, f), (b, g) in zip(nhwc, nchw, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(f, g, atol=1e-5, rtol=1e-4)


def test_a_session_leaves_the_model_it_is_given_as_it_was():
    torch.manual_seed(0)
    model = build_model("adam-tiny").eval()  # planar weights, not compiled
    before = {name: (value.clone(), value.stride()) for name, value in model.state_dict().items()}
    run(AdamSession(model, channels_last=True), frames(2))
    list(matte_bidirectional(model, frames(2), channels_last=True))
    assert not model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name][0]) and value.stride() == before[name][1], name
    with pytest.raises(ValueError, match="evaluation mode"):
        AdamSession(model.train())
    assert model.training


def astronaut_clip(length: int = 3, size: int = 160) -> list[torch.Tensor]:
    """A real person, drifting right by 4 pixels a frame: ``(3, size, size)`` float frames in [0, 1]."""
    image = torch.from_numpy(astronaut()).permute(2, 0, 1).float()[None] / 255
    image = F.interpolate(image, (size, size + 4 * length), mode="bilinear", antialias=True)[0]
    return [image[:, :, 4 * t : 4 * t + size].contiguous() for t in range(length)]


@pytest.mark.parametrize("downsample_ratio", [None, 0.5])
def test_frame_0_is_encoded_once_with_the_own_mask_head_and_the_mattes_stay_the_same(downsample_ratio):
    model = load_model("adam-default")  # a trained mask head: its mask tells the two ways of using it apart
    clip = astronaut_clip()
    calls = []
    hook = model.encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        default = run(AdamSession(model, downsample_ratio=downsample_ratio), clip)
    finally:
        hook.remove()
    assert len(calls) == len(clip)
    # the previous way: the mask head run on frame 0 by itself, its full-size mask then given as the mask
    with torch.inference_mode():
        own_mask = model.segment(clip[0][None], downsample_ratio)
    previous = run(AdamSession(model, first_mask=own_mask, downsample_ratio=downsample_ratio), clip)
    for (alpha, foreground), (expected_alpha, expected_foreground) in zip(default, previous, strict=True):
        torch.testing.assert_close(alpha, expected_alpha, atol=1e-5, rtol=0)
        torch.testing.assert_close(foreground, expected_foreground, atol=1e-5, rtol=0)


def test_mask_of_the_wrong_size_is_reported():
    with pytest.raises(VidmatteError, match=r"^masks/0000.png: mask size 10x8 does not fit frames of 64x64"):
        GivenMask(np.zeros((8, 10), bool), source="masks/0000.png")(torch.zeros(1, 3, 64, 64))


def test_unknown_precision_is_rejected(model):
    with pytest.raises(ValueError, match="precision"):
        AdamSession(model, precision="int8")


def test_bidirectional_runs_in_reverse_and_differs_from_online(model):
    clip = frames(5)
    online = run(AdamSession(model), clip)
    reverse = list(matte_bidirectional(model, clip))
    assert [t for t, _, _ in reverse] == [4, 3, 2, 1, 0]
    for t, alpha, foreground in reverse:
        assert alpha.shape == online[t][0].shape and torch.isfinite(alpha).all()
        assert foreground.min() >= 0 and foreground.max() <= 1
    assert any(not torch.equal(alpha, online[t][0]) for t, alpha, _ in reverse)
    averaged = {t: alpha for t, alpha, _ in matte_bidirectional(model, clip, average=True)}
    for t, alpha, _ in reverse:
        torch.testing.assert_close(averaged[t], (alpha + online[t][0]) / 2, atol=1e-3, rtol=0)


def test_the_whole_reverse_pass_reads_the_forward_pass():
    model = load_model("adam-default")  # trained weights: fresh ones hardly read their memory
    clip = frames(12, seed=3)
    pinned = BidirectionalSession(AdamSession(model))
    reverse = {t: alpha for t, alpha, _ in pinned(clip)}
    # frame 0 comes 11 reverse frames after the forward pass: only the pinned entries still hold it
    unpinned = {t: alpha for t, alpha, _ in BidirectionalSession(AdamSession(model), pinned=0)(clip)}
    assert (reverse[0] - unpinned[0]).abs().max() > 1e-3
    reverse_only = run(AdamSession(model), clip[::-1])
    assert (reverse[0] - reverse_only[-1][0]).abs().max() > 1e-3
    for t in range(8, 12):  # until the short-term memory turns over, the two reverse passes differ only
        assert not torch.equal(reverse[t], unpinned[t])  # by the pinned entries


def test_windows_continue_one_forward_pass_instead_of_reseeding(model):
    clip = frames(10, seed=4)
    session = BidirectionalSession(AdamSession(model))
    outputs = [list(session(clip[:6])), list(session(clip[6:]))]
    assert [t for t, _, _ in outputs[1]] == [3, 2, 1, 0]
    online = AdamSession(model)
    run(online, clip)
    assert len(session.forward.memory.entries) == len(online.memory.entries) == 5
    for a, b in zip(session.forward.memory.entries, online.memory.entries, strict=True):
        torch.testing.assert_close(a.key, b.key)
        torch.testing.assert_close(a.value, b.value)
    assert session.forward.memory.pinned == ()  # the reverse pass's pins never reach the forward pass
