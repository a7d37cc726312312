"""End-to-end `matte_video` / `vidmatte matte` on small generated videos, with tiny weights written here."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import pytest

from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.inference.backgrounds import VideoBackground, fit_to, open_background
from vidmatte.inference.engine import EngineSettings, load_engine
from vidmatte.inference.video import matte_video
from vidmatte.io.frames import list_frames, read_grey_u8, read_rgb_u8, write_image
from vidmatte.io.masks import Track, encode_rle, write_ytvis_json
from vidmatte.io.render import TINT, instance_colours, visualise_instances

W, H, N = 96, 64, 8
RATE = Fraction(25)
SAMPLE_RATE = 44100


def _frame(index: int, width: int = W, height: int = H) -> np.ndarray:
    """A person-like blob moving over a gradient, ``(H, W, 3)`` uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width * 200, y / height * 200, np.full_like(x, 90)], -1)
    blob = np.hypot((x - width / 3 - 2 * index) / 1.5, y - height / 2) < height / 4
    image[blob] = (230, 180, 150)
    return image.astype(np.uint8)


def _instance_masks(index: int, width: int = W, height: int = H) -> np.ndarray:
    """Two instances' guidance, ``(2, H, W)`` bool: the left and right halves of the blob's rows."""
    blob = np.all(_frame(index, width, height) == (230, 180, 150), axis=-1)
    left = np.zeros_like(blob)
    left[:, : width // 3 + 2 * index] = True
    return np.stack([blob & left, blob & ~left])


def _make_video(
    path: Path,
    width: int = W,
    height: int = H,
    frames: int = N,
    audio: bool = True,
    milliseconds: list[int] | None = None,
) -> Path:
    """An H.264 (or FFV1 for .mkv) test video, with a sine audio track, at explicit times if given."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1" if path.suffix == ".mkv" else "libx264", rate=RATE)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if path.suffix != ".mkv" else "bgr0"
        if milliseconds is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=SAMPLE_RATE)
            sound.layout = "mono"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_frame(index, width, height), "rgb24")
            if milliseconds is not None:
                frame.pts, frame.time_base = milliseconds[index], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            samples = int(SAMPLE_RATE * frames / RATE)
            wave = (0.3 * np.sin(np.arange(samples) / 20)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, start : start + 1024]), "fltp", "mono"
                )
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


class Decoded(NamedTuple):
    frames: list[np.ndarray]  # (H, W, 4) uint8 RGBA
    times: list[Fraction]  # seconds
    size: tuple[int, int]
    rate: Fraction | None
    audio_seconds: float


def _decode(path: Path) -> Decoded:
    """A video output, its alpha included (VP9 alpha needs libvpx), or a folder of PNGs."""
    if path.is_dir():
        frames = []
        for image in list_frames(path):
            with av.open(str(image)) as container:
                frames.append(next(container.decode(video=0)).to_ndarray(format="rgba"))
        return Decoded(frames, [], (frames[0].shape[1], frames[0].shape[0]), None, 0.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name == "vp9":
            decoder = av.CodecContext.create("libvpx-vp9", "r")
            decoded = (f for p in container.demux(stream) if p.size for f in decoder.decode(p))
        else:
            decoded = container.decode(stream)
        pairs = [
            (f.to_ndarray(format="rgba", src_color_range=f.color_range), f.pts * f.time_base) for f in decoded
        ]
        frames, times = [p[0] for p in pairs], [p[1] for p in pairs]
        size, rate = (stream.width, stream.height), stream.average_rate
    with av.open(str(path)) as container:
        audio = 0.0
        if container.streams.audio:
            track = container.streams.audio[0]
            audio = sum(f.samples for f in container.decode(track)) / track.rate
    return Decoded(frames, times, size, rate, audio)


@pytest.fixture(scope="module")
def weights(tiny_weights: dict[str, Path]) -> dict[str, Path]:
    """Tiny random-weight checkpoints: the tests check the pipeline, not the quality of the mattes."""
    return tiny_weights


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_video(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def masks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PNG guidance of the two instances of ``clip``, named by frame index."""
    folder = tmp_path_factory.mktemp("masks")
    for t in range(N):
        for index, mask in enumerate(_instance_masks(t)):
            write_image(folder / f"person{index}" / f"{t:03d}.png", mask.astype(np.uint8) * 255)
    return folder


# ------------------------------------------------------------------------------------ formats
FORMATS = [
    # format, outputs, alpha tolerance (mean absolute error in 8-bit levels)
    ("mp4", ("alpha", "foreground", "composite"), 1.0),
    ("prores", ("alpha", "rgba"), 1.0),
    ("webm", ("alpha", "rgba", "composite"), 2.0),
    ("mkv", ("alpha", "rgba"), 0.0),
    ("png", ("alpha", "foreground", "composite", "rgba"), 0.0),
]


@pytest.fixture(scope="module")
def reference_alpha(tmp_path_factory: pytest.TempPathFactory, clip: Path, weights) -> list[np.ndarray]:
    """The model's alpha of ``clip`` as exact PNGs."""
    out = tmp_path_factory.mktemp("reference")
    matte_video(clip, out, checkpoint=weights["adam"], outputs=["alpha"], format="png")
    return [read_grey_u8(p) for p in list_frames(out / "alpha")]


@pytest.mark.parametrize(("format", "outputs", "tolerance"), FORMATS)
def test_every_format_decodes_back_with_count_size_rate_and_audio(
    tmp_path: Path, clip: Path, weights, reference_alpha, format, outputs, tolerance
) -> None:
    result = matte_video(clip, tmp_path, checkpoint=weights["adam"], outputs=outputs, format=format)
    suffix = {"mp4": ".mp4", "prores": ".mov", "webm": ".webm", "mkv": ".mkv", "png": ""}[format]
    assert result.outputs == [tmp_path / f"{kind}{suffix}" for kind in outputs]
    assert result.frames == N
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in result.outputs)  # no partials
    for path in result.outputs:
        decoded = _decode(path)
        assert len(decoded.frames) == N and decoded.size == (W, H), path
        if format != "png":
            assert decoded.rate == RATE, path
            assert abs(decoded.audio_seconds - N / RATE) < 0.1, path
    alpha = _decode(tmp_path / f"alpha{suffix}").frames
    errors = [np.abs(a[..., 0].astype(int) - r).mean() for a, r in zip(alpha, reference_alpha, strict=True)]
    assert max(errors) <= tolerance
    if "rgba" in outputs:  # the transparency is the same alpha
        rgba = _decode(tmp_path / f"rgba{suffix}").frames
        errors = [
            np.abs(a[..., 3].astype(int) - r).mean() for a, r in zip(rgba, reference_alpha, strict=True)
        ]
        assert max(errors) <= max(tolerance, 1.0)  # ProRes keeps 10 bits of alpha, VP9 less


def test_lossless_mp4_alpha_is_exact(tmp_path: Path, clip: Path, weights, reference_alpha) -> None:
    matte_video(clip, tmp_path / "a.mp4", checkpoint=weights["adam"], outputs=["alpha"], lossless=True)
    decoded = _decode(tmp_path / "a.mp4").frames
    assert all(np.array_equal(d[..., 0], r) for d, r in zip(decoded, reference_alpha, strict=True))


def test_png_outputs_follow_the_matting_equation(tmp_path: Path, clip: Path, weights) -> None:
    outputs = ["alpha", "foreground", "composite", "rgba"]
    matte_video(
        clip, tmp_path, checkpoint=weights["adam"], outputs=outputs, format="png", background="#ff8000"
    )
    for name in list_frames(tmp_path / "alpha"):
        alpha = read_grey_u8(name).astype(np.float32) / 255
        foreground = read_rgb_u8(tmp_path / "foreground" / name.name).astype(np.float32)
        composite = read_rgb_u8(tmp_path / "composite" / name.name).astype(np.float32)
        expected = foreground * alpha[..., None] + np.array([255, 128, 0]) * (1 - alpha[..., None])
        # foreground, alpha and composite are each rounded to 8 bits: half a level each
        assert np.abs(composite - expected).max() <= 1.5
        rgba = _decode(tmp_path / "rgba").frames[int(name.stem)]
        assert np.array_equal(rgba[..., :3], foreground.astype(np.uint8))
        assert np.array_equal(rgba[..., 3], read_grey_u8(name))


def test_variable_frame_rate_keeps_its_timestamps(tmp_path: Path, weights) -> None:
    milliseconds = [0, 40, 120, 130, 200, 260, 400, 410]
    clip = _make_video(tmp_path / "vfr.mkv", audio=False, milliseconds=milliseconds)
    result = matte_video(clip, tmp_path / "out", checkpoint=weights["adam"], outputs=["alpha"])
    assert _decode(result.outputs[0]).times == [Fraction(t, 1000) for t in milliseconds]


def test_odd_sized_image_folder_works(tmp_path: Path, weights) -> None:
    width, height = 323, 241
    for t in range(3):
        write_image(tmp_path / "frames" / f"f{t}.png", _frame(t, width, height))
    result = matte_video(
        tmp_path / "frames", tmp_path / "out", checkpoint=weights["adam"], outputs=["alpha", "composite"]
    )
    for path in result.outputs:
        decoded = _decode(path)
        assert len(decoded.frames) == 3 and decoded.size == (width, height)
        assert decoded.rate == 30  # an image folder plays at the default rate


@pytest.mark.slow
def test_python_api_and_cli_give_identical_results(tmp_path: Path, clip: Path, weights, masks) -> None:
    common = ["--outputs", "alpha,composite", "--format", "png", "--background", "#102030"]
    assert (
        main(
            [
                "matte",
                str(clip),
                "--out",
                str(tmp_path / "cli"),
                "--checkpoint",
                str(weights["adam"]),
                *common,
            ]
        )
        == 0
    )
    matte_video(
        clip,
        tmp_path / "api",
        checkpoint=weights["adam"],
        outputs=["alpha", "composite"],
        format="png",
        background="#102030",
    )
    cli_args = [
        "--model",
        "msgvim",
        "--masks",
        str(masks),
        "--checkpoint",
        str(weights["msgvim"]),
        "--chunk",
        "3",
    ]
    assert main(["matte", str(clip), "--out", str(tmp_path / "cli_vim"), *cli_args, *common]) == 0
    matte_video(
        clip,
        tmp_path / "api_vim",
        model="msgvim",
        masks=masks,
        checkpoint=weights["msgvim"],
        chunk=3,
        outputs=["alpha", "composite"],
        format="png",
        background="#102030",
    )
    for cli, api in (("cli", "api"), ("cli_vim", "api_vim")):
        files = sorted(p.relative_to(tmp_path / cli) for p in (tmp_path / cli).rglob("*.png"))
        assert files == sorted(p.relative_to(tmp_path / api) for p in (tmp_path / api).rglob("*.png"))
        assert len(files) >= 2 * N
        for f in files:
            assert np.array_equal(read_rgb_u8(tmp_path / cli / f), read_rgb_u8(tmp_path / api / f)), f


class _Interrupting:
    """An engine whose online matter is interrupted (Ctrl-C) at frame ``stop``."""

    def __init__(self, engine, stop: int) -> None:
        self.settings = engine.settings
        self._engine = engine
        self._stop = stop

    def adam_online(self, first_mask, downsample_ratio, segmentor=None):
        matter = self._engine.adam_online(first_mask, downsample_ratio, segmentor)
        count = iter(range(self._stop))

        def step(frame):
            if next(count, None) is None:
                raise KeyboardInterrupt
            return matter(frame)

        return step


@pytest.mark.parametrize("format", ["webm", "png"])
def test_an_interrupted_run_leaves_no_complete_looking_output(
    tmp_path: Path, clip: Path, weights, format
) -> None:
    engine = _Interrupting(load_engine(EngineSettings("adam", weights["adam"])), stop=4)
    with pytest.raises(KeyboardInterrupt):
        matte_video(
            clip,
            tmp_path / "out",
            outputs=["alpha", "rgba"],
            format=format,
            engine=engine,
        )
    assert not (tmp_path / "out").exists()  # neither outputs nor partial files, nor the folder it made


def test_instances_get_one_output_each_and_a_colour_coded_view(
    tmp_path: Path, clip: Path, weights, masks
) -> None:
    result = matte_video(
        clip,
        tmp_path,
        model="msgvim",
        masks=masks,
        checkpoint=weights["msgvim"],
        outputs=["alpha", "rgba"],
        format="webm",
        chunk=3,
    )
    assert result.instances == ["person0", "person1"]
    expected = [tmp_path / kind / f"person{i}.webm" for kind in ("alpha", "rgba") for i in range(2)]
    assert result.outputs == [*expected, tmp_path / "instances.webm"]
    for path in result.outputs:
        decoded = _decode(path)
        assert len(decoded.frames) == N and decoded.size == (W, H) and decoded.rate == RATE, path


def test_youtube_vis_tracks_guide_instances_and_must_fit_the_video(
    tmp_path: Path, clip: Path, weights
) -> None:
    tracks = [Track(1, 1, 0.9, [encode_rle(_instance_masks(t)[i]) for t in range(N)]) for i in range(2)]
    write_ytvis_json(tmp_path / "tracks.json", tracks)
    result = matte_video(
        clip,
        tmp_path / "out",
        model="msgvim",
        masks=tmp_path / "tracks.json",
        checkpoint=weights["msgvim"],
        outputs=["alpha"],
        format="png",
    )
    assert result.instances == ["000", "001"]
    assert [len(list_frames(p)) for p in result.outputs] == [N, N, N]
    write_ytvis_json(tmp_path / "long.json", [Track(1, 1, 0.9, [None] * (N + 2))])
    with pytest.raises(VidmatteError, match=r"long\.json"):
        matte_video(
            clip, tmp_path / "bad", model="msgvim", masks=tmp_path / "long.json", checkpoint=weights["msgvim"]
        )
    assert not any((tmp_path / "bad").rglob("*.mp4"))


@pytest.mark.parametrize("model", ["adam", "msgvim"])
def test_bfloat16_runs_both_models(tmp_path: Path, clip: Path, weights, masks, model) -> None:
    options = {"masks": masks} if model == "msgvim" else {}
    result = matte_video(
        clip,
        tmp_path,
        model=model,
        checkpoint=weights[model],
        outputs=["alpha"],
        format="png",
        precision="bf16",
        **options,
    )
    assert result.frames == N and all(len(list_frames(p)) == N for p in result.outputs)


def test_bidirectional_windows_keep_every_frame(tmp_path: Path, clip: Path, weights) -> None:
    result = matte_video(
        clip,
        tmp_path,
        checkpoint=weights["adam"],
        outputs=["alpha"],
        format="png",
        bidirectional=True,
        chunk=3,
    )
    assert result.frames == N and len(list_frames(tmp_path / "alpha")) == N


# --------------------------------------------------------------------------- what goes around
def test_instance_colours_are_stable_and_tint_the_frame() -> None:
    image = np.full((4, 6, 3), 100, np.uint8)
    alphas = np.zeros((2, 4, 6), np.float32)
    alphas[0, :, :3] = 1
    alphas[1, :, 3:] = 1
    view = visualise_instances(image, alphas).astype(float)
    for index, columns in ((0, slice(0, 3)), (1, slice(3, 6))):
        expected = 100 * (1 - TINT) + TINT * instance_colours(2)[index]
        assert np.abs(view[:, columns] - expected).max() <= 0.5
    assert np.array_equal(
        visualise_instances(image, alphas[:1])[:, :3], visualise_instances(image, alphas)[:, :3]
    )


def test_instance_colours_never_repeat_and_keep_their_order() -> None:
    colours = instance_colours(200).round().astype(int)
    assert len({tuple(c) for c in colours}) == 200
    # the first instances, the ones people tell apart by eye, differ clearly
    first = colours[:20]
    distances = np.abs(first[:, None] - first[None]).sum(-1) + 999 * np.eye(20, dtype=int)
    assert distances.min() > 40
    assert np.array_equal(instance_colours(5), instance_colours(200)[:5])


def test_backgrounds_cover_the_frame_and_videos_loop(tmp_path: Path) -> None:
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:, 15:25] = 255  # the centre survives the crop
    fitted = fit_to(wide, 20, 20)
    assert fitted.shape == (20, 20, 3) and fitted[10, 10, 0] == 255
    video = _make_video(tmp_path / "bg.mkv", width=32, height=16, frames=3, audio=False)
    background = open_background(video, 16, 16)
    assert isinstance(background, VideoBackground)
    frames = [background.next_frame() for _ in range(5)]
    background.close()
    assert frames[0].shape == (16, 16, 3) and frames[0].dtype == np.float32
    assert np.array_equal(frames[3], frames[0]) and np.array_equal(frames[4], frames[1])
    assert not np.array_equal(frames[1], frames[0])
    assert np.array_equal(open_background("#000000", 2, 2).next_frame(), np.zeros((2, 2, 3), np.float32))


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing input", r"^\S*nothing\.mp4: no such file"),
        ("mask of another size", r"^\S*small\.png: mask size 8x8 does not fit frames of 96x64"),
        ("msgvim weights for adam", r"^\S*msgvim\.safetensors: .*not of AdamModel"),
        ("masks of another size", r"^\S*person0/000\.png: mask size 8x8"),
        ("foreground of msgvim", r"foreground"),
        ("transparency in mp4", r"^\S*rgba\.mp4: an \.mp4 video cannot hold transparency"),
        ("unwritable video type", r"^\S*out\.avi: cannot write \.avi videos"),
    ],
)
def test_bad_input_gives_one_line_naming_the_file(
    tmp_path: Path, clip: Path, weights, case, match, capsys
) -> None:
    write_image(tmp_path / "small.png", np.zeros((8, 8), np.uint8))
    write_image(tmp_path / "masks" / "person0" / "000.png", np.zeros((8, 8), np.uint8))
    out = str(tmp_path / "out")
    args = {
        "missing input": [str(tmp_path / "nothing.mp4"), "--out", out],
        "mask of another size": [str(clip), "--out", out, "--first-mask", str(tmp_path / "small.png")],
        "msgvim weights for adam": [str(clip), "--out", out, "--checkpoint", str(weights["msgvim"])],
        "masks of another size": [
            str(clip),
            "--out",
            out,
            "--model",
            "msgvim",
            "--masks",
            str(tmp_path / "masks"),
            "--checkpoint",
            str(weights["msgvim"]),
        ],
        "foreground of msgvim": [
            str(clip),
            "--out",
            out,
            "--model",
            "msgvim",
            "--masks",
            str(tmp_path / "masks"),
            "--outputs",
            "foreground",
        ],
        "transparency in mp4": [
            str(clip),
            "--out",
            out,
            "--outputs",
            "rgba",
            "--checkpoint",
            str(weights["adam"]),
        ],
        "unwritable video type": [str(clip), "--out", str(tmp_path / "out.avi")],
    }[case]
    assert main(["matte", *args]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("vidmatte: error: ")
    assert re.search(match, error.removeprefix("vidmatte: error: "))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.*"))
