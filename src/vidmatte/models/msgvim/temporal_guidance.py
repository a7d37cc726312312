"""Temporal feature guidance (TFG): a convolutional RNN over a slice of a decoder feature's channels."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn


class TemporalState(NamedTuple):
    """The recurrent state carried from one chunk of frames to the next.

    Attributes:
        hidden: ``(B, C_g, h, w)`` float32 in [-1, 1], the last hidden state of each sequence.
    """

    hidden: Tensor


class TemporalFeatureGuidance(nn.Module):
    """ConvRNN on the last ``guided_channels`` channels of a feature sequence; the rest pass through.

    ``h_0 = tanh(Conv_ih(F_0))`` when no state comes in, then ``h_t = tanh(Conv_ih(F_t) + Conv_hh(h_{t-1}))``,
    with 3x3 convolutions; the hidden states replace the guided channels. The sequence length is free,
    and the state is an explicit value, so a video processed in chunks with the state carried over
    gives the same result as one long chunk.

    Args:
        guided_channels: channels the RNN runs on (MSG-VIM: half of the 1/2-resolution feature).
        kernel_size: size of both convolutions.
    """

    def __init__(self, guided_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.guided_channels = guided_channels
        self.input_to_hidden = nn.Conv2d(
            guided_channels, guided_channels, kernel_size, padding=kernel_size // 2
        )
        self.hidden_to_hidden = nn.Conv2d(
            guided_channels, guided_channels, kernel_size, padding=kernel_size // 2
        )

    def forward(self, features: Tensor, state: TemporalState | None = None) -> tuple[Tensor, TemporalState]:
        """Run the RNN along time.

        Args:
            features: ``(B, T, C, h, w)`` float32 with ``C >= guided_channels``.
            state: the state left by the previous chunk of the same sequences, or ``None`` to start.

        Returns:
            ``(B, T, C, h, w)`` features (the last ``guided_channels`` replaced by hidden states, in
            [-1, 1]) and the state after the last frame.
        """
        kept, guided = features.split([features.shape[2] - self.guided_channels, self.guided_channels], dim=2)
        hidden = None if state is None else state.hidden
        if hidden is not None and hidden.shape != guided[:, 0].shape:
            raise ValueError(
                f"temporal state of shape {tuple(hidden.shape)} does not fit frames giving "
                f"{tuple(guided[:, 0].shape)}: carry it only between chunks of the same sequences and size"
            )
        outputs = []
        for t in range(guided.shape[1]):
            drive = self.input_to_hidden(guided[:, t])
            hidden = torch.tanh(drive if hidden is None else drive + self.hidden_to_hidden(hidden))
            outputs.append(hidden)
        return torch.cat([kept, torch.stack(outputs, dim=1)], dim=2), TemporalState(hidden)
