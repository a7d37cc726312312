"""Chunked MSG-VIM inference, guidance handling, baselines and the matte-vim command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.inference.msgvim import MsgVimSession
from vidmatte.inference.torch_engine import prepare_network
from vidmatte.inference.vim50 import GuidanceAsAlpha, matte_clip, matte_videos
from vidmatte.io.frames import list_frames, normalised_u8, read_grey_u8, write_image
from vidmatte.io.guidance import GuidanceSource, PngGuidance, TrackGuidance
from vidmatte.io.masks import Track, encode_rle, write_ytvis_json
from vidmatte.models.loading import save_weights
from vidmatte.models.msgvim.factory import msgvim_tiny
from vidmatte.models.msgvim.model import MsgVim, MsgVimOutput
from vidmatte.models.msgvim.temporal_guidance import TemporalState

H, W, FRAMES = 24, 40, 7


def _mask(index: int, frame: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[4:20, 2 + 12 * index + frame : 16 + 12 * index + frame] = True  # neighbours overlap by 2 columns
    return mask


@pytest.fixture
def vim(tmp_path: Path) -> Path:
    """``VIM50/clip0/com`` with 7 frames, ``tg_masks/clip0/{a,b}`` (b lacks frame 3), ``pha`` = the masks."""
    rng = np.random.default_rng(0)
    for t in range(FRAMES):
        write_image(
            tmp_path / "VIM50" / "clip0" / "com" / f"{t:05d}.png", rng.integers(0, 255, (H, W, 3), np.uint8)
        )
        for index, name in enumerate("ab"):
            mask = _mask(index, t) * np.uint8(255)
            write_image(tmp_path / "VIM50" / "clip0" / "pha" / name / f"{t:05d}.png", mask)
            if not (name == "b" and t == 3):
                write_image(tmp_path / "tg_masks" / "clip0" / name / f"{t:05d}.png", mask)
    return tmp_path


def _outputs(root: Path, instance: str) -> np.ndarray:
    return np.stack([read_grey_u8(p) for p in list_frames(root / instance)])


def test_guidance_baseline_through_the_cli_scores_as_its_masks(vim: Path, tmp_path: Path):
    out = tmp_path / "out"
    args = ["matte-vim", "--data", str(vim / "VIM50"), "--masks", str(vim / "tg_masks"), "--out", str(out)]
    assert main([*args, "--baseline", "guidance", "--chunk", "3"]) == 0
    b = _outputs(out / "clip0", "b")
    assert b.shape == (FRAMES, H, W)  # the leftover chunk (frame 6) is written too
    assert b[3].max() == 0 and b[2].max() == 255  # frame 3 has no guidance: an empty mask
    np.testing.assert_array_equal(_outputs(out / "clip0", "a")[5], _mask(0, 5) * 255)
    report = tmp_path / "vimq.json"
    assert main(["eval-vim", "--pred", str(out), "--true", str(vim / "VIM50"), "--json", str(report)]) == 0
    overall = json.loads(report.read_text())["overall"]
    # Instance b has IoU 0 in 1 of 7 frames, so RQ = (1 + 6/7) / 2; the mattes are exact elsewhere.
    assert overall["RQ"] == pytest.approx((1 + 6 / 7) / 2 * 100)


def test_normalised_instances_never_sum_past_255(vim: Path, tmp_path: Path):
    out = tmp_path / "out"
    args = ["matte-vim", "--data", str(vim / "VIM50" / "clip0"), "--masks", str(vim / "tg_masks")]
    assert main([*args, "--out", str(out), "--baseline", "guidance", "--normalise"]) == 0
    total = _outputs(out / "clip0", "a").astype(int) + _outputs(out / "clip0", "b")
    assert total.max() <= 255 and (total == 254).any()  # overlaps are shared (127 + 127)
    rng = np.random.default_rng(1)
    alphas = rng.random((4, 50)).astype(np.float32)
    assert normalised_u8(alphas).sum(0, dtype=int).max() <= 255


def _tiny_model() -> MsgVim:
    torch.manual_seed(0)
    model = msgvim_tiny()
    for module in model.modules():  # non-zero residual branches, so that the test can fail
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
    return model


def _tiny_session(**kwargs) -> MsgVimSession:
    return MsgVimSession(prepare_network(_tiny_model()), **kwargs)


def _run(vim: Path, out: Path, chunk: int, session: MsgVimSession) -> dict[str, np.ndarray]:
    frames = list_frames(vim / "VIM50" / "clip0" / "com")
    guidance = PngGuidance(vim / "tg_masks" / "clip0", [f.stem for f in frames])
    names = matte_clip(frames, guidance, out, session, chunk_size=chunk)
    return {name: _outputs(out, name) for name in names}


def test_carried_state_equals_one_chunk_and_instance_batches_agree(vim: Path, tmp_path: Path):
    whole = _run(vim, tmp_path / "whole", FRAMES, _tiny_session())
    carried = _run(vim, tmp_path / "carried", 3, _tiny_session(carry_state=True, instance_batch=1))
    reset = _run(vim, tmp_path / "reset", 3, _tiny_session())
    for name in "ab":
        assert whole[name].shape == (FRAMES, H, W)
        assert np.abs(whole[name].astype(int) - carried[name]).max() <= 1
        np.testing.assert_array_equal(whole[name][:3], reset[name][:3])
    assert any(np.abs(whole[n][3:].astype(int) - reset[n][3:]).max() > 1 for n in "ab")


def test_weights_through_the_cli(vim: Path, tmp_path: Path, capsys):
    weights = save_weights(_tiny_model(), tmp_path / "tiny.safetensors", "msgvim-tiny")
    out = tmp_path / "out"
    args = ["matte-vim", "--data", str(vim / "VIM50"), "--masks", str(vim / "tg_masks"), "--out", str(out)]
    assert (
        main([*args, "--weights", str(weights), "--chunk", "4", "--carry-state", "--instance-batch", "1"])
        == 0
    )
    assert len(list_frames(out / "clip0" / "a")) == FRAMES
    bare = tmp_path / "bare.safetensors"
    # records no model name; weights held channels-last (as sessions hold them) are written packed
    channels_last = _tiny_model().to(memory_format=torch.channels_last)
    save_file({k: v.contiguous() for k, v in channels_last.state_dict().items()}, str(bare))
    assert main([*args, "--model", "msgvim-tiny", "--weights", str(bare)]) == 0
    assert main([*args, "--model", "msgvim-small", "--weights", str(bare)]) == 2
    assert "weights do not fit MsgVim" in capsys.readouterr().err
    assert main(args) == 2
    assert "needs --weights" in capsys.readouterr().err


def test_ytvis_guidance(vim: Path, tmp_path: Path):
    tracks = [
        Track(1, 1, 0.9, [encode_rle(_mask(0, t)) for t in range(FRAMES)]),
        Track(1, 1, 0.8, [encode_rle(_mask(1, t)) if t != 2 else None for t in range(FRAMES - 2)]),
    ]
    json_path = tmp_path / "clip0.json"
    json_path.write_text(json.dumps([t.__dict__ for t in tracks]))
    out = tmp_path / "out"
    args = ["matte-vim", "--data", str(vim / "VIM50"), "--ytvis", str(json_path), "--out", str(out)]
    assert main([*args, "--baseline", "guidance"]) == 0
    second = _outputs(out / "clip0", "001")
    assert second.shape == (FRAMES, H, W)
    assert second[2].max() == 0 and second[5:].max() == 0 and second[4].max() == 255  # null and past the end
    other = Track(2, 1, 0.7, [encode_rle(_mask(0, t)) for t in range(FRAMES)])
    json_path.write_text(json.dumps([t.__dict__ for t in [*tracks, other]]))
    with pytest.raises(
        VidmatteError, match=r"tracks of 2 videos \(video_id 1, 2\) for one video; keep only its tracks"
    ):
        matte_videos(vim / "VIM50", out, GuidanceAsAlpha, ytvis=json_path)
    assert matte_videos(vim / "VIM50", out, GuidanceAsAlpha, ytvis=json_path, video_id=2) == {
        "clip0": ["000"]
    }
    assert matte_videos(vim / "VIM50", tmp_path / "none", GuidanceAsAlpha, ytvis=json_path, video_id=3) == {
        "clip0": []
    }
    assert (tmp_path / "none" / "clip0").is_dir()  # scored by eval-vim as a clip without predictions
    too_long = Track(1, 1, 0.5, [None] * (FRAMES + 1))
    with pytest.raises(VidmatteError, match="track 0 has 8 frames, the video 7"):
        TrackGuidance([too_long], FRAMES, "x.json")
    wrong_size = Track(1, 1, 0.5, [encode_rle(np.ones((H, W + 1), bool))])
    with pytest.raises(VidmatteError, match="does not fit frames of 40x24"):
        TrackGuidance([wrong_size], FRAMES, "x.json").masks(0, (H, W))


def test_guidance_that_cannot_be_aligned_is_refused(vim: Path):
    stems = [f"{t:05d}" for t in range(FRAMES)]
    write_image(vim / "tg_masks" / "clip0" / "a" / "00099.png", np.zeros((H, W), np.uint8))
    with pytest.raises(VidmatteError, match=r"a/00099\.png: no video frame named 00099"):
        PngGuidance(vim / "tg_masks" / "clip0", stems)
    (vim / "tg_masks" / "clip0" / "a" / "00099.png").unlink()
    write_image(vim / "tg_masks" / "clip0" / "b" / "00001.png", np.zeros((H, W + 2), np.uint8))
    guidance = PngGuidance(vim / "tg_masks" / "clip0", stems)
    with pytest.raises(VidmatteError, match=r"b/00001\.png: mask size 42x24 does not fit frames of 40x24"):
        guidance.masks(1, (H, W))
    with pytest.raises(VidmatteError, match="no such guidance folder"):
        PngGuidance(vim / "tg_masks" / "clipX", stems)


def test_guidance_baseline_is_a_chunk_matter():
    targets = np.zeros((2, 3, 4, 5), bool)
    targets[1, :, 1:3] = True
    alphas = GuidanceAsAlpha()(np.zeros((3, 4, 5, 3), np.float32), targets, ~targets)
    assert alphas.dtype == np.float32 and alphas.sum() == targets.sum()


class _SmallMemory(torch.nn.Module):
    """Stands in for the network: out of memory above two instances (or always), else echoes the masks."""

    def __init__(self, limit: int = 2) -> None:
        super().__init__()
        self.limit = limit
        self.batches: list[int] = []

    def forward(self, rgb, target, reference, state=None):
        if rgb.shape[0] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory")
        self.batches.append(rgb.shape[0])
        alpha = torch.cat([target, reference], dim=2)
        return MsgVimOutput(alpha, alpha, alpha, alpha, TemporalState(alpha[:, -1, :1]))


def test_instance_batches_shrink_when_memory_runs_out():
    model = _SmallMemory()
    session = MsgVimSession(model, carry_state=True)
    targets = np.zeros((5, 2, 8, 8), bool)
    targets[[0, 3], :, 2:5, 2:5] = True
    alphas = session(np.zeros((2, 8, 8, 3), np.float32), targets, np.zeros_like(targets))
    np.testing.assert_array_equal(alphas, targets)
    assert model.batches == [2, 2, 1] and session.fitting_batch == 2
    assert session.instance_batch is None  # the setting stays as given
    with pytest.raises(VidmatteError, match="out of memory on cpu for one instance of 2 frames at 8x8"):
        MsgVimSession(_SmallMemory(limit=0))(np.zeros((2, 8, 8, 3), np.float32), targets, targets)


def test_unpadded_frame_numbers_are_processed_in_time_order(tmp_path: Path):
    for t in range(12):
        write_image(tmp_path / "data" / "clip" / "com" / f"{t}.png", np.full((4, 6, 3), t, np.uint8))
        write_image(tmp_path / "masks" / "clip" / "a" / f"{t}.png", np.full((4, 6), 255, np.uint8))
    seen: list[float] = []

    def record(rgb: np.ndarray, targets: np.ndarray, references: np.ndarray) -> np.ndarray:
        seen.extend(np.round(rgb[:, 0, 0, 0] * 255).tolist())
        return targets.astype(np.float32)

    matte_videos(tmp_path / "data", tmp_path / "out", lambda: record, masks=tmp_path / "masks", chunk_size=5)
    assert seen == list(range(12))
    assert len(list_frames(tmp_path / "out" / "clip" / "a")) == 12


def test_matte_and_matte_vim_share_one_default_the_state_restarts_at_every_chunk(tmp_path: Path):
    from vidmatte.inference.engine import EngineSettings
    from vidmatte.inference.torch_engine import load_torch_engine

    torch.manual_seed(0)
    weights = save_weights(msgvim_tiny(), tmp_path / "w.safetensors", "msgvim-tiny")
    engine = load_torch_engine(EngineSettings("msgvim", weights))
    rng = np.random.default_rng(0)
    rgb = rng.random((2, 3, 16, 16, 3), dtype=np.float32)  # two chunks of 3 frames
    targets = np.zeros((1, 3, 16, 16), bool)
    targets[:, :, 4:12, 4:12] = True
    references = np.zeros_like(targets)
    chunks = engine.msgvim_chunks()
    _, second = (chunks(chunk, targets, references) for chunk in rgb)
    alone = engine.msgvim_chunks()(rgb[1], targets, references)
    np.testing.assert_array_equal(second, alone)
    session = MsgVimSession(engine.network, carry_state=True)
    carried = [session(chunk, targets, references) for chunk in rgb][1]
    assert np.abs(carried - alone).max() > 1e-4


def test_a_session_leaves_the_model_it_is_given_as_it_was():
    torch.manual_seed(0)
    model = msgvim_tiny().eval()  # planar weights
    before = {name: (value.clone(), value.stride()) for name, value in model.state_dict().items()}
    targets = np.zeros((2, 2, 16, 16), bool)
    targets[0, :, 4:12, 4:12] = True
    MsgVimSession(model, carry_state=True)(np.zeros((2, 16, 16, 3), np.float32), targets, targets[::-1])
    assert not model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name][0]) and value.stride() == before[name][1], name
    with pytest.raises(ValueError, match="evaluation mode"):
        MsgVimSession(model.train())
    assert model.training


def test_on_a_cpu_instances_are_batched_within_a_memory_budget():
    from vidmatte.inference.msgvim import BYTES_PER_INSTANCE_PIXEL, CPU_BATCH_BYTES, MARGIN

    model = _SmallMemory(limit=10**6)
    targets = np.zeros((12, 10, 256, 256), bool)
    MsgVimSession(model)(np.zeros((10, 256, 256, 3), np.float32), targets, targets)
    per_instance = BYTES_PER_INSTANCE_PIXEL * 10 * (256 + 2 * MARGIN) ** 2
    fits = CPU_BATCH_BYTES // per_instance
    assert 1 < fits < 12 and model.batches == [fits] * (12 // fits) + ([12 % fits] if 12 % fits else [])


def test_one_guidance_source_serves_a_video_and_the_clips_of_a_data_set(tmp_path: Path):
    shared = tmp_path / "all.json"
    write_ytvis_json(shared, [Track(v, 1, 1.0, [encode_rle(_mask(v, 0))]) for v in (2, 1)])
    source = GuidanceSource(shared, ["clip0", "clip1"])  # video ids pair with the clips in order
    for index, clip in enumerate(["clip0", "clip1"]):
        guidance = source.clip(clip, None, 1)
        assert guidance.names == ["000"] and (guidance.masks(0, (H, W))[0] == _mask(index + 1, 0)).all()
    with pytest.raises(VidmatteError, match=r"all\.json: tracks of 2 videos \(video_id 1, 2\) for one video"):
        GuidanceSource(shared).clip("clip.mp4", None, 1)
    assert GuidanceSource(shared, video_id=2).clip("clip.mp4", None, 1).names == ["000"]
    empty = tmp_path / "nobody.json"
    write_ytvis_json(empty, [])
    assert GuidanceSource(empty, ["clip0", "clip1"]).clip("clip1", None, 4).names == []
    write_image(tmp_path / "masks" / "a" / "0003.png", _mask(0, 3) * np.uint8(255))
    guidance = GuidanceSource(tmp_path / "masks").clip("clip.mp4", None, 5)  # a video: named by index
    assert (guidance.masks(3, (H, W))[0] == _mask(0, 3)).all() and not guidance.masks(2, (H, W)).any()
    with pytest.raises(VidmatteError, match=r"gone: no such masks file or folder"):
        GuidanceSource(tmp_path / "gone").clip("clip.mp4", None, 5)
