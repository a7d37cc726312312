"""AdaM's default first-frame segmentor (every person on the frame), and a session that waits for people."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_person_tracks import FakeDetector, Walker, fake_segment, render

from vidmatte import build_model
from vidmatte.inference.adam import FIRST_MASK_PATIENCE, AdamSession
from vidmatte.segmentation.first_frame import PeopleSegmentor

WALKERS = [
    Walker((220, 40, 40), (40.0, 48.0)),
    Walker((40, 200, 60), (110.0, 50.0)),
    Walker((230, 200, 30), (150.0, 20.0), radii=(5.0, 8.0), detected=False),  # only the fallback finds it
]


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def test_the_first_frame_mask_is_every_person_detected_or_not():
    image, visible = render(WALKERS, 0)
    mask = PeopleSegmentor(FakeDetector(WALKERS), fake_segment)(as_tensor(image))
    assert mask.shape == (1, 1, *image.shape[:2])
    everyone = visible.any(0)
    overlap = (mask[0, 0].numpy() > 0.5) & everyone
    assert overlap.sum() / everyone.sum() > 0.95
    assert ((mask[0, 0].numpy() > 0.5) & ~everyone).sum() < 0.02 * everyone.sum()


def test_nobody_on_the_frame_is_none():
    image, _ = render([], 0)
    assert PeopleSegmentor(FakeDetector([]), fake_segment)(as_tensor(image)) is None


class LateSegmentor:
    """Finds nobody on the first ``empty`` frames, then a fixed mask."""

    def __init__(self, empty: int) -> None:
        self.empty, self.calls = empty, 0

    def __call__(self, frame: torch.Tensor) -> torch.Tensor | None:
        self.calls += 1
        if self.calls <= self.empty:
            return None
        mask = torch.zeros(frame.shape[0], 1, *frame.shape[2:])
        mask[..., 8:40, 8:24] = 1
        return mask


def test_a_session_waits_for_people_before_starting_its_memory():
    torch.manual_seed(0)
    model = build_model("adam-tiny").eval()
    frames = torch.rand(6, 3, 48, 32, generator=torch.Generator().manual_seed(0))
    session = AdamSession(model, segmentor=LateSegmentor(empty=3))
    outputs = [session.step(frame) for frame in frames]
    for t, (alpha, foreground) in enumerate(outputs[:3]):  # a fade-in: nothing matted nor remembered
        assert not alpha.any() and torch.equal(foreground, frames[t][None])
    assert session.waited == 3 and len(session.memory) == 1 + 3  # frame 3 long- and short-term, 4, 5
    # the memory starts at the first frame with someone on it, as a session starting there would
    fresh = AdamSession(model, segmentor=LateSegmentor(empty=0))
    torch.testing.assert_close(fresh.step(frames[3])[0], outputs[3][0])


def test_after_its_patience_a_session_falls_back_to_the_models_own_head():
    torch.manual_seed(0)
    model = build_model("adam-tiny").eval()
    frames = torch.rand(FIRST_MASK_PATIENCE + 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    session = AdamSession(model, segmentor=LateSegmentor(empty=10**6))
    for frame in frames[:FIRST_MASK_PATIENCE]:
        assert not session.step(frame)[0].any()
    with pytest.warns(UserWarning, match=f"found nobody in {FIRST_MASK_PATIENCE + 1} frames"):
        alpha, _ = session.step(frames[FIRST_MASK_PATIENCE])
    assert alpha.any() and len(session.memory) == 2
