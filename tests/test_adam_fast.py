"""adam-fast's parts: memory entries pooled over the token grid, a decoder narrowed from a wider one,
weights averaged over runs."""

import pytest
import torch

from vidmatte import load_model
from vidmatte.models.adam.factory import adam_tiny
from vidmatte.models.adam.model import EncodedFrame
from vidmatte.models.loading import save_weights
from vidmatte.training.narrow import BLOCKS, narrow_adam


def clip(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, 3, 48, 80, generator=torch.Generator().manual_seed(seed))


def test_a_pooled_entry_holds_the_means_of_each_window_of_tokens():
    model = adam_tiny(memory_pool=2).eval()
    dim = model.embedding.foreground.shape[-1]
    grid = (3, 5)
    tokens = torch.randn(1, 15, dim)
    frame = EncodedFrame((), grid, tokens, tokens, tokens)
    key, value = model.encode_memory(frame, torch.zeros(1, 15))
    assert key.shape == (1, 2 * 3, dim)
    plane = tokens[0].view(3, 5, dim)
    assert torch.allclose(key[0, 0], plane[:2, :2].mean((0, 1)), atol=1e-6)
    assert torch.allclose(key[0, 2], plane[:2, 4].mean(0), atol=1e-6)  # cut by the right edge
    assert torch.allclose(key[0, 5], plane[2, 4], atol=1e-6)  # the corner window holds one token
    embedded = model.embedding(tokens, torch.zeros(1, 15))[0].view(3, 5, dim)
    assert torch.allclose(value[0, 4], embedded[2, 2:4].mean(0), atol=1e-6)


def test_a_pooled_memory_holds_a_quarter_of_the_keys_and_is_read():
    torch.manual_seed(0)
    whole = adam_tiny().eval()
    pooled = adam_tiny(memory_pool=2).eval()
    pooled.load_state_dict(whole.state_dict())
    frames = clip()
    with torch.no_grad():
        (a, memory_a), (b, memory_b) = whole(frames), pooled(frames)
    assert (a.mask_logits - b.mask_logits).abs().max() > 1e-3  # the memory is read
    assert len(memory_a) == len(memory_b) == 4
    assert memory_a.read().key.shape[1] == 4 * 15 and memory_b.read().key.shape[1] == 4 * 6  # 3x5 -> 2x3


def test_memory_pool_below_one_is_refused():
    with pytest.raises(ValueError, match="memory_pool"):
        adam_tiny(memory_pool=0)


def test_narrowing_to_the_same_widths_copies_the_model():
    torch.manual_seed(0)
    wide, copy = adam_tiny().eval(), adam_tiny().eval()
    frames = clip()
    narrow_adam(wide, copy, frames)
    with torch.no_grad():
        assert torch.equal(wide(frames)[0].alpha, copy(frames)[0].alpha)


def test_narrowing_keeps_the_channels_that_carry_signal():
    """Channels made silent in a wide decoder are the ones dropped: the narrow one computes the same."""
    torch.manual_seed(0)
    wide = adam_tiny().eval()
    narrow_widths = (24, 12, 8, 4)
    with torch.no_grad():
        for name, width in zip(BLOCKS, narrow_widths, strict=True):
            block = getattr(wide.decoder, name)
            dead = torch.randperm(block.conv.out_channels)[: block.conv.out_channels - width]
            block.fuse[1].weight[dead] = 0  # inner channels: BN then ReLU give 0
            block.fuse[1].bias[dead] = -1
            outer = torch.randperm(block.conv.out_channels)[: block.conv.out_channels - width]
            block.conv.weight[outer] = 0  # block outputs that are always 0
            block.conv.bias[outer] = 0
    narrow = adam_tiny(decoder_channels=narrow_widths).eval()
    frames = clip(1)
    narrow_adam(wide, narrow, frames)
    with torch.no_grad():
        expected, got = wide(frames)[0], narrow(frames)[0]
    for field in ("alpha", "foreground", "coarse_alpha", "mask_logits"):
        assert torch.allclose(getattr(expected, field), getattr(got, field), atol=1e-5), field


def test_narrowing_refuses_a_wider_decoder_or_another_encoder():
    frames = clip()
    with pytest.raises(ValueError, match="wider"):
        narrow_adam(adam_tiny(decoder_channels=(32, 16, 8, 8)), adam_tiny(), frames)
    with pytest.raises(ValueError, match="encoder"):
        narrow_adam(adam_tiny(), adam_tiny(width_mult=0.5), frames)


def test_averaged_weights_are_the_weighted_mean_and_mixed_networks_are_refused(tmp_path, monkeypatch, capsys):
    from scripts import average_weights

    torch.manual_seed(0)
    first, second = adam_tiny(), adam_tiny()
    save_weights(first, tmp_path / "a.safetensors", "adam-tiny")
    save_weights(second, tmp_path / "b.safetensors", "adam-tiny")
    out = tmp_path / "soup.safetensors"
    argv = [
        "average_weights.py",
        str(out),
        f"{tmp_path / 'a.safetensors'}:0.75",
        f"{tmp_path / 'b.safetensors'}:0.25",
    ]
    monkeypatch.setattr("sys.argv", argv)
    average_weights.main()
    soup = load_model(out)
    for key, tensor in soup.state_dict().items():
        a, b = first.state_dict()[key], second.state_dict()[key]
        expected = 0.75 * a + 0.25 * b if tensor.is_floating_point() else a
        torch.testing.assert_close(tensor, expected)
    save_weights(
        adam_tiny(memory_pool=2, decoder_channels=(24, 12, 8, 4)), tmp_path / "c.safetensors", "adam-fast"
    )
    for shares, message in [(("0.5", "0.25"), "add up to 0.75"), (("0.5", "0.5"), "different or unnamed")]:
        inputs = [f"{tmp_path / 'a.safetensors'}:{shares[0]}", f"{tmp_path / 'c.safetensors'}:{shares[1]}"]
        monkeypatch.setattr("sys.argv", ["average_weights.py", str(out), *inputs])
        with pytest.raises(SystemExit, match=message):
            average_weights.main()
