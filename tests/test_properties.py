"""Property tests: arbitrary input to the readers (masks, JSON, images, videos, weights) and the metrics
gives a result or a clear error.

"Clear" means a :class:`VidmatteError` whose one-line message starts with the file (or RLE source) it
is about, for readers of files; a ``ValueError`` naming the problem, for the pure metric functions.
Never another exception, never a crash of a native extension, never a hang (each example runs under
an alarm).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from PIL import Image
from safetensors.torch import save_file

from vidmatte.data.ytvis import read_coco_annotations, read_ytvis_annotations
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import read_alpha, read_grey_u8, read_rgb_u8
from vidmatte.io.jsonfile import read_json
from vidmatte.io.masks import decode_rle, encode_rle, read_ytvis_json
from vidmatte.io.reader import open_frames
from vidmatte.metrics import alpha
from vidmatte.metrics.vimq import ERRORS, frame_statistics, score_clip
from vidmatte.models.loading import read_weights

HANG_SECONDS = 20  # far above what any example here takes; reaching it means the code hung
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@contextlib.contextmanager
def no_hang() -> Iterator[None]:
    def fail(*_: object) -> None:
        raise AssertionError(f"no answer within {HANG_SECONDS} s: the code hangs")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_clear(error: VidmatteError, source: str | Path) -> None:
    message = str(error)
    assert message.startswith(str(source)), message
    assert "\n" not in message and "Traceback" not in message, message


# JSON values of every kind, nested a little: what a malformed result or annotation file may hold.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
small_ints = st.integers(-3, 24)
rle_sizes = st.one_of(st.lists(small_ints, max_size=3), st.tuples(small_ints, small_ints), json_values)
rle_counts = st.one_of(
    st.text(max_size=24),
    st.text(st.characters(min_codepoint=48, max_codepoint=111), max_size=24),  # COCO's alphabet
    st.lists(st.integers(-4, 40), max_size=12),
    json_values,
)
rles = st.one_of(st.fixed_dictionaries({"size": rle_sizes, "counts": rle_counts}), json_values)


# ------------------------------------------------------------------------------------------ RLE
@settings(max_examples=150, deadline=None)
@given(rle=rles)
def test_any_rle_decodes_to_its_size_or_is_reported(rle) -> None:
    try:
        with no_hang():
            mask = decode_rle(rle, "clip.json track 3 frame 7")
    except VidmatteError as error:
        assert_clear(error, "clip.json track 3 frame 7")
        return
    assert mask.dtype == bool and list(mask.shape) == [int(s) for s in rle["size"]]


@settings(max_examples=60, deadline=None)
@given(mask=arrays(bool, array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=12)))
def test_rle_round_trips_any_mask(mask: np.ndarray) -> None:
    assert np.array_equal(decode_rle(encode_rle(mask)), mask)


def test_corrupt_sizes_are_refused_before_anything_is_allocated() -> None:
    for size, reason in (([-1, 3], "out of range"), ([2**40, 2**40], "out of range"), ([2**70, 1], "range")):
        with pytest.raises(VidmatteError, match=reason), no_hang():
            decode_rle({"size": size, "counts": ""})
    with pytest.raises(VidmatteError, match="negative run length"):
        decode_rle({"size": [3, 3], "counts": [-1, 10]})


# ------------------------------------------------------------------------------------ JSON files
@FUZZ
@given(content=st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_file_reads_as_json_or_is_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    try:
        with no_hang():
            read_json(path)
    except VidmatteError as error:
        assert_clear(error, path)


def test_deeply_nested_json_is_reported_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(VidmatteError, match=r"deep\.json: not a readable JSON file") as caught:
        read_json(path)
    assert_clear(caught.value, path)


tracks = st.fixed_dictionaries(
    {"segmentations": st.lists(st.none() | rles, max_size=3) | json_values},
    optional={"video_id": json_values, "category_id": json_values, "score": json_values},
)


@FUZZ
@given(content=st.lists(tracks | json_values, max_size=3) | json_values, frames=st.integers(0, 4))
def test_any_ytvis_result_file_gives_masks_or_is_reported(tmp_path: Path, content, frames: int) -> None:
    path = tmp_path / "vis.json"
    path.write_text(json.dumps(content))
    try:
        with no_hang():
            for track in read_ytvis_json(path):
                for frame in range(frames):
                    mask = track.mask(frame, (5, 7), source=str(path))
                    assert mask.shape == (5, 7) and mask.dtype == bool
    except VidmatteError as error:
        assert_clear(error, path)


videos = st.fixed_dictionaries(
    {"id": json_values | small_ints, "height": json_values | small_ints, "width": json_values | small_ints},
    optional={"file_names": st.lists(st.text(max_size=4) | json_values, max_size=3) | json_values},
)
annotations = st.fixed_dictionaries(
    {},
    optional={
        "video_id": small_ints | json_values,
        "image_id": small_ints | json_values,
        "category_id": st.just(1) | json_values,
        "segmentations": st.lists(st.none() | rles, max_size=3) | json_values,
        "segmentation": rles | st.lists(st.lists(st.floats(-1e6, 1e6) | json_values, max_size=8), max_size=2),
    },
)
annotation_files = st.fixed_dictionaries(
    {},
    optional={
        "videos": st.lists(videos | json_values, max_size=2) | json_values,
        "images": st.lists(
            st.fixed_dictionaries(
                {"id": small_ints | json_values, "height": small_ints, "width": small_ints},
                optional={"file_name": st.text(max_size=4) | json_values},
            )
            | json_values,
            max_size=2,
        )
        | json_values,
        "annotations": st.lists(annotations | json_values, max_size=3) | json_values,
        "categories": st.lists(
            st.fixed_dictionaries({"id": st.just(1) | json_values, "name": st.just("person") | json_values})
            | json_values,
            max_size=2,
        )
        | json_values,
    },
)


@FUZZ
@given(content=annotation_files | json_values)
def test_any_annotation_file_gives_masks_or_is_reported(tmp_path: Path, content) -> None:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(content))
    try:
        with no_hang():
            for video in read_ytvis_annotations(path, tmp_path):
                masks = video.masks(0, len(video.frames))
                assert masks.shape[1:] == (len(video.frames), video.height, video.width)
            for image in read_coco_annotations(path, tmp_path):
                masks = image.masks()
                assert masks.shape[1:] == (image.height, image.width)
    except VidmatteError as error:
        assert_clear(error, path)


# -------------------------------------------------------------------------------- frame readers
def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png_bytes()


def _mutated(original: bytes) -> st.SearchStrategy[bytes]:
    """A valid file with some bytes replaced and/or its tail cut."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(original)
        for _ in range(draw(st.integers(0, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data[: draw(st.integers(0, len(data)))])

    return mutate()


@FUZZ
@given(content=st.binary(max_size=512) | _mutated(PNG), suffix=st.sampled_from([".png", ".jpg", ".tif"]))
def test_any_image_file_reads_or_is_reported(tmp_path: Path, content: bytes, suffix: str) -> None:
    path = tmp_path / f"frame{suffix}"
    path.write_bytes(content)
    for reader in (read_grey_u8, read_rgb_u8, read_alpha):
        try:
            with no_hang():
                image = reader(path)
        except VidmatteError as error:
            assert_clear(error, path)
            continue
        assert image.ndim in (2, 3) and image.shape[0] > 0 and image.shape[1] > 0


def test_an_image_declaring_a_gigantic_size_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    # the IHDR chunk (after the 8-byte signature and the chunk's length and type) declares 30000x30000
    header = b"IHDR" + struct.pack(">II", 30_000, 30_000) + PNG[24:29]
    path.write_bytes(PNG[:12] + header + struct.pack(">I", zlib.crc32(header)) + PNG[33:])
    with pytest.raises(VidmatteError, match=r"bomb\.png: unreadable image") as caught, no_hang():
        read_rgb_u8(path)
    assert_clear(caught.value, path)


@FUZZ
@given(first=st.binary(max_size=64) | _mutated(PNG), second=st.binary(max_size=64) | _mutated(PNG))
def test_any_image_folder_streams_or_is_reported(tmp_path: Path, first: bytes, second: bytes) -> None:
    folder = tmp_path / "frames"
    folder.mkdir(exist_ok=True)
    (folder / "0000.png").write_bytes(first)
    (folder / "0001.png").write_bytes(second)
    try:
        with no_hang(), open_frames(folder) as reader:
            count = sum(frame.image.shape == (reader.info.height, reader.info.width, 3) for frame in reader)
        assert count == 2
    except VidmatteError as error:
        assert str(folder) in str(error) and "\n" not in str(error)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        for index in range(6):
            image = np.full((16, 32, 3), index * 40, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path.read_bytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), accept_truncated=st.booleans())
def test_any_damaged_video_streams_or_is_reported(
    tmp_path: Path, tiny_video: bytes, data, accept_truncated
) -> None:
    path = tmp_path / "damaged.mp4"
    path.write_bytes(data.draw(_mutated(tiny_video)))
    try:
        with no_hang(), open_frames(path, accept_truncated=accept_truncated) as reader:
            indices = [frame.index for frame in reader if frame.image.shape == (16, 32, 3)]
        assert indices == list(range(len(indices))) and len(indices) > 0
    except VidmatteError as error:
        assert_clear(error, path)


# -------------------------------------------------------------------------------------- metrics
floats32 = st.floats(width=32)  # NaN, infinities and values far outside [0, 1] included
shapes = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


def _score_or_value_error(metric, *arrays_: np.ndarray) -> None:
    try:
        with no_hang():
            value = metric(*arrays_)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        return
    values = value if isinstance(value, tuple) else (value,)
    assert all(isinstance(v, float) for v in values)


@settings(max_examples=120, deadline=None)
@given(
    pred=arrays(np.float32, shapes, elements=floats32),
    true=arrays(np.float32, shapes, elements=floats32),
    prev=arrays(np.float32, shapes, elements=floats32),
)
def test_alpha_metrics_on_any_arrays_give_a_float_or_a_value_error(pred, true, prev) -> None:
    _score_or_value_error(alpha.mad, pred, true)
    _score_or_value_error(alpha.mse, pred, true)
    _score_or_value_error(alpha.dtssd, pred, prev, true, true)
    _score_or_value_error(alpha.grad, pred, true)
    _score_or_value_error(lambda p, t: alpha.grad(p, t, normalize=False), pred, true)
    _score_or_value_error(alpha.conn, pred, true)


def test_metrics_refuse_arrays_that_do_not_pair_up() -> None:
    small, large = np.zeros((2, 2), np.float32), np.zeros((40, 40), np.float32)
    for metric in (alpha.mad, alpha.mse, alpha.grad, alpha.conn):
        with pytest.raises(ValueError, match=r"shapes differ: \(2, 2\) and \(40, 40\)"):
            metric(small, large)
    with pytest.raises(ValueError, match="shapes differ"):
        alpha.dtssd(small, small, small, large)
    with pytest.raises(ValueError, match="empty"):
        alpha.mad(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        alpha.conn(np.zeros((2, 2, 2), np.float32), np.zeros((2, 2, 2), np.float32))


@settings(max_examples=60, deadline=None)
@given(
    size=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    pred=arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 4))),
    true=arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 4))),
    pha=st.floats(0, 1, width=32),
)
def test_foreground_errors_on_any_arrays(size, pred, true, pha) -> None:
    true_pha = np.full(size, pha, np.float32)
    _score_or_value_error(alpha.foreground_errors, pred, true, true_pha)
    _score_or_value_error(alpha.foreground_errors, pred.astype(np.float32) / 255, true, true_pha)


@settings(max_examples=60, deadline=None)
@given(
    num_true=st.integers(0, 3),
    num_pred=st.integers(0, 3),
    frames=st.integers(1, 3),
    side=st.integers(1, 4),
    data=st.data(),
)
def test_vimq_on_any_instance_counts_scores_within_range(num_true, num_pred, frames, side, data) -> None:
    unit = st.floats(0, 1, width=32)
    statistics, previous = [], None
    for _ in range(frames):
        true = data.draw(arrays(np.float32, (num_true, side, side), elements=unit))
        pred = data.draw(arrays(np.float32, (num_pred, side, side), elements=unit))
        statistics.append(frame_statistics(true, pred, *(previous or (None, None))))
        previous = (true, pred)
    with no_hang():
        score = score_clip(statistics, ERRORS)
    for value in (score.rq, score.tq, *score.mq.values()):
        assert 0.0 <= value <= 1.0 and not math.isnan(value)
    assert score.true_positives + score.false_negatives == num_true
    assert score.true_positives + score.false_positives == num_pred


# ---------------------------------------------------------------------------------- weights files
@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("weights")
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2, dtype=torch.int64)}
    save_file(state, str(folder / "w.safetensors"))
    torch.save(state, folder / "w.pt")
    return {suffix: (folder / f"w{suffix}").read_bytes() for suffix in (".safetensors", ".pt")}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), suffix=st.sampled_from([".safetensors", ".pt"]))
def test_any_weights_file_reads_or_is_reported(tmp_path: Path, tiny_weights, data, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(data.draw(st.binary(max_size=256) | _mutated(tiny_weights[suffix])))
    try:
        with no_hang():
            state, _ = read_weights(path)
        assert all(isinstance(v, torch.Tensor) for v in state.values())
    except VidmatteError as error:
        assert_clear(error, path)
