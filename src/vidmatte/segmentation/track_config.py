"""Every threshold of the person track builder, in one typed configuration."""

from __future__ import annotations

from dataclasses import dataclass

from vidmatte.validation import check_fields


@dataclass(frozen=True)
class TrackConfig:
    """Settings of :func:`~vidmatte.segmentation.tracks.build_person_tracks`.

    Those up to ``fallback_max_contact`` settle each frame's instances (:mod:`.frame_instances`), the
    rest their tracks (:mod:`.tracker`).

    Attributes:
        min_score: detections scoring below this are ignored, in [0, 1].
        detect_width: width in pixels at which the detector sees a frame (smaller frames are not
            upscaled); 768 finds pedestrians of about a tenth of the frame's height.
        crop_scale: side of the square crop segmented around a person / the longer side of their box
            (1.2: a margin for hair, hands and feet that the box cuts off).
        crop_size: side in pixels at which a frame's crops are batched to the segmenter, which resizes
            them to its own input (256: the general selfie network's input, so no second resize).
        mask_threshold: a pixel belongs to a person only where their probability exceeds this.
        tie_margin: where several people's probabilities lie within this of the highest, the pixel goes
            to the one whose box centre is nearest (not to a hair's-breadth winner: less speckle).
        min_mask_pixels: a detected person whose mask has fewer pixels is dropped for that frame.
        fallback: also segment the whole frame and turn confident foreground that no detected person
            covers into extra instances (people the detector misses: small ones, a seventh, a crowd).
        fallback_size: long side in pixels of the frame as given to the fallback segmentation.
        fallback_opening: radius in pixels, at ``fallback_size``, of the morphological opening that
            removes thin slivers left along detected people's edges before components are counted.
        fallback_min_area: smallest component kept by the fallback, as a fraction of the frame's area.
        fallback_max_contact: a component whose outline runs along detected people for more than this
            fraction of its length is taken as a part of them the crops left out (the gap between an arm
            and the body, a limb) and dropped, not made another person.
        keypoint_weight: share of the keypoint distance in the matching cost, in [0, 1]; the rest is
            ``1 - mask IoU``. Pairs without common confident keypoints use the IoU term alone.
        keypoint_min_score: a keypoint takes part in the distance only where both its scores reach this.
        keypoint_tolerance: mean keypoint distance, as a fraction of the track's size (square root of its
            mask's bounding-box area), at which the keypoint cost reaches its maximum of 1.
        max_cost: gating threshold: a track and an instance costing more are never matched.
        birth_frames: a new track is confirmed once matched on this many consecutive frames ...
        birth_score: ... or at once when a detector score reaches this (fallback instances, which have
            no detector score, always need ``birth_frames``). A confirmed track keeps the frames it was
            seen on before confirmation.
        max_missed: a track unmatched for more frames than this ends; a person reappearing within it
            (a short occlusion) keeps their track.
        velocity_smoothing: weight of the newest displacement in the track's velocity (an exponential
            moving average), which predicts where a track is on the next frame, in [0, 1].
    """

    min_score: float = 0.2
    detect_width: int = 768
    crop_scale: float = 1.2
    crop_size: int = 256
    mask_threshold: float = 0.5
    tie_margin: float = 0.05
    min_mask_pixels: int = 16
    fallback: bool = True
    fallback_size: int = 256
    fallback_opening: int = 1
    fallback_min_area: float = 0.002
    fallback_max_contact: float = 0.5
    keypoint_weight: float = 0.5
    keypoint_min_score: float = 0.3
    keypoint_tolerance: float = 0.5
    max_cost: float = 0.8
    birth_frames: int = 3
    birth_score: float = 0.5
    max_missed: int = 10
    velocity_smoothing: float = 0.5

    def __post_init__(self) -> None:
        fractions = (
            "min_score",
            "mask_threshold",
            "tie_margin",
            "fallback_min_area",
            "fallback_max_contact",
            "keypoint_weight",
            "keypoint_min_score",
            "birth_score",
            "velocity_smoothing",
        )
        check_fields(self, fractions, 0, 1)
        check_fields(self, ("detect_width", "crop_size", "fallback_size", "birth_frames", "crop_scale"), 1)
        check_fields(self, ("min_mask_pixels", "fallback_opening", "max_missed"), 0)
        if self.keypoint_tolerance <= 0.0 or self.max_cost <= 0.0:
            raise ValueError("keypoint_tolerance and max_cost must be positive")
