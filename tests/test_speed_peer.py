"""The speed benchmarks' peer (RVM's network written from its paper) and their MAC counter."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.macs import MacCounter
from benchmarks.peers.rvm import RecurrentState, RobustVideoMatting


def test_mac_counter_counts_attention_and_convolutions() -> None:
    query, key = torch.rand(2, 4, 10, 8), torch.rand(2, 4, 30, 8)
    conv = torch.nn.Conv2d(6, 4, 3, padding=1, groups=2)
    with MacCounter() as counter:
        F.scaled_dot_product_attention(query, key, torch.rand(2, 4, 30, 16))
        conv(torch.rand(1, 6, 7, 9))
    assert counter.macs["attention"] == 2 * 4 * 10 * 30 * (8 + 16)
    assert counter.macs["conv"] == 4 * 7 * 9 * (3 * 3 * 3)  # C_in / groups = 3


@torch.inference_mode()
def test_peer_has_the_papers_size_and_cost_and_carries_its_state() -> None:
    torch.manual_seed(0)
    peer = RobustVideoMatting().eval()
    assert abs(sum(p.numel() for p in peer.parameters()) - 3.75e6) < 0.01e6
    frame = torch.rand(1, 3, 288, 512)
    alpha, foreground, state = peer(frame, RecurrentState())
    with MacCounter() as counter:
        again, again_foreground, _ = peer(frame, state)
    assert abs(counter.total - 4.5e9) < 0.1e9  # the paper: 4.57 GMACs at 512x288
    assert alpha.shape == (1, 1, 288, 512) and foreground.shape == (1, 3, 288, 512)
    # the recurrent state changed the second frame's output (random weights may clamp the alpha to 0)
    assert not (torch.equal(alpha, again) and torch.equal(foreground, again_foreground))
    hd_alpha, hd_foreground, _ = peer(torch.rand(1, 3, 270, 481), RecurrentState(), downsample_ratio=0.25)
    assert hd_alpha.shape == (1, 1, 270, 481) and hd_foreground.shape == (1, 3, 270, 481)
    assert hd_alpha.min() >= 0 and hd_alpha.max() <= 1
