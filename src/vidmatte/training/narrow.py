"""A narrower AdaM decoder started from a wider one's most used channels (structured pruning).

``adam-fast`` has the paper model's encoder, projections, transformer and guided filter, and a decoder
whose upscaling blocks are narrower. Rather than train that decoder from scratch, each narrower width
keeps the wide decoder's channels that carry the most signal on real inputs: a channel's importance is
its mean absolute activation on the given frames times the norm of the weights that read it. Inside a
block the channels are the ``3x3 conv + BN + ReLU``'s outputs, read by the block's second convolution;
between blocks they are the block's outputs, read by the next block (and, after the 1/8 block, by the
first output block's heads). Every other tensor is copied as it is, so a width kept whole keeps its
block exactly; fine-tuning then recovers what the dropped channels carried.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidmatte.models.adam.decoder import AdamDecoder, UpscalingBlock
from vidmatte.models.adam.model import AdamModel

BLOCKS = ("up16", "up8", "up4", "up2")


def _mean_abs_activations(model: AdamModel, frames: Tensor) -> dict[str, Tensor]:
    """Per-channel mean ``|activation|`` of each block's inner (``"<block>.fuse"``) and output features
    while ``model`` mattes ``(B, T, 3, H, W)`` frames."""
    sums: dict[str, Tensor] = {}

    def record(name: str):
        def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            mean = output.detach().float().abs().mean((0, 2, 3))
            sums[name] = sums.get(name, 0) + mean

        return hook

    handles = []
    for name in BLOCKS:
        block = getattr(model.decoder, name)
        handles += [
            block.fuse[-1].register_forward_hook(record(f"{name}.fuse")),
            block.register_forward_hook(record(name)),
        ]
    try:
        with torch.no_grad():
            model.eval()(frames)
    finally:
        for handle in handles:
            handle.remove()
    return sums


def _heads(decoder: AdamDecoder) -> list[nn.Conv2d]:
    """The first output block's heads that the decoder has (they read the 1/8 block's output)."""
    return [head for head in (decoder.mask_head, decoder.coarse_head) if head is not None]


def _readers(decoder: AdamDecoder, name: str) -> list[Tensor]:
    """The weights that read block ``name``'s output channels, sliced to those channels."""
    index = BLOCKS.index(name)
    width = getattr(decoder, name).conv.out_channels
    if index + 1 < len(BLOCKS):
        readers = [getattr(decoder, BLOCKS[index + 1]).fuse[0].weight[:, :width]]
    else:
        readers = [decoder.refine[0][0].weight[:, :width]]
    if name == "up8":
        readers += [head.weight for head in _heads(decoder)]
    return readers


def _input_norms(weights: list[Tensor]) -> Tensor:
    """The norm of each input channel's weights across ``(out, in, kh, kw)`` convolution ``weights``."""
    return sum(w.float().square().sum((0, 2, 3)) for w in weights).sqrt()


def _keep(importance: Tensor, width: int) -> Tensor:
    """Indices of the ``width`` most important channels, in their original order."""
    return importance.topk(width).indices.sort().values


def _copy_block(
    narrow: UpscalingBlock, wide: UpscalingBlock, inputs: Tensor, inner: Tensor, outer: Tensor
) -> None:
    """``narrow`` <- ``wide`` restricted to inputs ``inputs``, inner channels ``inner``, outputs ``outer``."""
    narrow.fuse[0].weight.copy_(wide.fuse[0].weight[inner][:, inputs])
    narrow_norm, wide_norm = narrow.fuse[1], wide.fuse[1]
    for key in ("weight", "bias", "running_mean", "running_var"):
        getattr(narrow_norm, key).copy_(getattr(wide_norm, key)[inner])
    narrow_norm.num_batches_tracked.copy_(wide_norm.num_batches_tracked)
    narrow.conv.weight.copy_(wide.conv.weight[outer][:, inner])
    narrow.conv.bias.copy_(wide.conv.bias[outer])


@torch.no_grad()
def narrow_adam(wide: AdamModel, narrow: AdamModel, frames: Tensor) -> None:
    """Load ``wide``'s weights into ``narrow``, keeping the most important channels where it is narrower.

    Args:
        wide: a trained AdaM.
        narrow: an AdaM built like ``wide`` but for decoder widths no larger than ``wide``'s.
        frames: ``(B, T, 3, H, W)`` float RGB in ``[0, 1]`` that ``wide`` mattes to measure activations.

    Raises:
        ValueError: the two differ elsewhere than in the decoder's upscaling widths, or ``narrow`` is wider.
    """
    narrowed = {f"decoder.{name}." for name in BLOCKS} | {
        "decoder.mask_head.",
        "decoder.coarse_head.",
        "decoder.refine.0.0.",
    }
    wide_state = wide.state_dict()
    for key, tensor in narrow.state_dict().items():
        if key not in wide_state:
            raise ValueError(f"the wide model has no {key}")
        if not key.startswith(tuple(narrowed)) and tensor.shape != wide_state[key].shape:
            raise ValueError(
                f"{key}: {tuple(tensor.shape)} here, {tuple(wide_state[key].shape)} in the wide model"
            )
        if tensor.shape == wide_state[key].shape:
            tensor.copy_(wide_state[key])
    activations = _mean_abs_activations(wide, frames)
    previous = torch.arange(wide.decoder.up16.fuse[0].in_channels)  # Z' is never narrowed
    wide_width = len(previous)
    for name in BLOCKS:
        small, large = getattr(narrow.decoder, name), getattr(wide.decoder, name)
        width = small.conv.out_channels
        if width > large.conv.out_channels:
            raise ValueError(f"decoder.{name} is wider ({width}) than the wide model's")
        inner = _keep(activations[f"{name}.fuse"] * _input_norms([large.conv.weight]), width)
        outer = _keep(activations[name] * _input_norms(_readers(wide.decoder, name)), width)
        skip = large.fuse[0].in_channels - wide_width
        _copy_block(small, large, torch.cat([previous, wide_width + torch.arange(skip)]), inner, outer)
        if name == "up8":
            for small_head, large_head in zip(_heads(narrow.decoder), _heads(wide.decoder), strict=True):
                small_head.weight.copy_(large_head.weight[:, outer])
        previous, wide_width = outer, large.conv.out_channels
    refine = wide.decoder.refine[0][0].weight
    columns = torch.cat([previous, wide_width + torch.arange(refine.shape[1] - wide_width)])
    narrow.decoder.refine[0][0].weight.copy_(refine[:, columns])
