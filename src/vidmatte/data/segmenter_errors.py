"""Parameters of the simulated video instance segmenter (:func:`vidmatte.data.guidance.simulate_segmenter`).

Apart from the simulation, so that the command line builds its ``--mask-*`` options without importing
SciPy (about 0.5 s of every command's start-up).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vidmatte.validation import check_fields


@dataclass(frozen=True)
class SegmenterErrors:
    """Parameters of the simulated segmenter; all probabilities are in [0, 1].

    Attributes:
        threshold: ground-truth alpha above which a pixel is in the instance.
        coarse: probability that a track's masks are computed at low resolution.
        coarse_factor: downsampling factor of coarse tracks.
        boundary: largest erosion (negative) or dilation (positive) radius in pixels, drawn per
            track in ``[-boundary, boundary]``.
        boundary_jitter: the radius also changes by up to this much from frame to frame.
        missing_frames: per track and frame, probability that the mask is empty.
        holes: per track and frame, probability of a hole punched in the mask.
        hole_size: hole radius as a fraction of the instance's height.
        false_positives: per track and frame, probability of a spurious blob.
        blob_size: blob radius as a fraction of the frame's height.
        identity_switch: per clip (with two or more tracks), probability that two tracks swap
            instances from some frame on.
        missed_instance: per clip (with two or more instances), probability that one instance
            gets no track.
    """

    threshold: float = 0.5
    coarse: float = 0.3
    coarse_factor: int = 8
    boundary: int = 3
    boundary_jitter: int = 1
    missing_frames: float = 0.03
    holes: float = 0.05
    hole_size: float = 0.08
    false_positives: float = 0.05
    blob_size: float = 0.06
    identity_switch: float = 0.1
    missed_instance: float = 0.05

    def __post_init__(self) -> None:
        fractions = ("threshold", "coarse", "missing_frames", "holes", "false_positives", "identity_switch",
                     "missed_instance")  # fmt: skip
        check_fields(self, fractions, 0, 1)
        check_fields(self, ("coarse_factor", "boundary", "boundary_jitter", "hole_size", "blob_size"), 0)
        check_fields(self, ("coarse_factor",), 1)

    @classmethod
    def none(cls) -> SegmenterErrors:
        """A perfect segmenter: masks are the binarised ground truth."""
        return cls(
            coarse=0.0,
            boundary=0,
            boundary_jitter=0,
            missing_frames=0.0,
            holes=0.0,
            false_positives=0.0,
            identity_switch=0.0,
            missed_instance=0.0,
        )

    def to_dict(self) -> dict:
        return asdict(self)
