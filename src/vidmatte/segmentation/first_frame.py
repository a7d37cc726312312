"""AdaM's default first-frame segmentor S: every person the track builder finds on the frame, as one mask.

The supplementary's Figure 5 starts AdaM's memory from an off-the-shelf segmenter that found every
person of the frame. Here that is one frame step of the person-track builder (detector boxes, the
selfie segmenter on a crop around each, confident foreground the detector missed), its instances
united into one mask.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from vidmatte.segmentation.frame_instances import Segmenter, frame_instances
from vidmatte.segmentation.track_config import TrackConfig
from vidmatte.segmentation.tracks import DEFAULT_CONFIG, Detector, load_person_models


class PeopleSegmentor:
    """A :class:`~vidmatte.inference.adam.FirstFrameSegmentor` that masks every person of the frame.

    Args:
        detect, segment: the person detector and segmenter (default: the shipped ones, on ``device``).
        device: where the shipped networks run.
        config: the track builder's thresholds.

    Calling it on ``(B, 3, H, W)`` RGB in ``[0, 1]`` gives ``(B, 1, H, W)`` float 0/1 masks on the
    frames' device, or ``None`` when a frame holds nobody (the session then uses the model's own head).
    """

    def __init__(
        self,
        detect: Detector | None = None,
        segment: Segmenter | None = None,
        device: str | torch.device = "cpu",
        config: TrackConfig | None = None,
    ) -> None:
        self.config = config or DEFAULT_CONFIG
        if detect is None or segment is None:
            detect, segment = load_person_models(device, self.config)
        self.detect, self.segment = detect, segment

    def __call__(self, frames: Tensor) -> Tensor | None:
        with torch.autocast(frames.device.type, enabled=False):  # its models run in float32 always
            return self._segment(frames)

    def _segment(self, frames: Tensor) -> Tensor | None:
        masks = []
        for frame in frames:
            image = (frame.float().permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
            instances = frame_instances(image, self.detect(image), self.segment, self.config)
            if not instances:
                return None
            size = image.shape[:2]
            masks.append(np.logical_or.reduce([instance.mask.full(size) for instance in instances]))
        return torch.from_numpy(np.stack(masks)[:, None].astype(np.float32)).to(frames.device)
