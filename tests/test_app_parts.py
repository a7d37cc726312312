"""The parts of ``vidmatte app`` that need no browser: the job settings' checks, session folders, the
first frame's people and their view, jobs run in this process, and the command without its extra."""

from __future__ import annotations

import json
import sys

import av
import numpy as np
import pytest
from app_driver import left_columns, two_people, write_clip

from vidmatte.app.job_spec import JobSpec
from vidmatte.app.people import FirstFramePeople
from vidmatte.app.people_view import DROPPED_DIM, render_people
from vidmatte.app.sessions import SessionStore, new_job_id, new_session_id
from vidmatte.app.state_file import read_state, write_state
from vidmatte.app.worker import FIRST_MASK_FILE, JOB_FILE, STATE_FILE, analyse, run_job
from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import read_grey_u8

GOOD = {"model": "adam", "keep": [0], "outputs": ["alpha"], "format": "mp4", "background": "#102030"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "rvm"}, "unknown model 'rvm'"),
        ({"format": "png"}, "unknown format 'png'"),
        ({"outputs": []}, "outputs: expected some of"),
        ({"outputs": ["alpha", "depth"]}, "outputs: expected some of"),
        ({"keep": [7]}, r"keep: expected some of the people \[0, 1\]"),
        ({"keep": []}, "nobody is kept"),
        ({"background": "image"}, "background: expected a colour"),
        ({"background": "beach.jpg"}, "background: expected a colour"),
    ],
)
def test_job_settings_are_refused_with_one_line(change, message):
    with pytest.raises(VidmatteError, match=message):
        JobSpec.from_request({**GOOD, **change}, [0, 1], has_image=False)
    assert JobSpec.from_request({**GOOD, "background": "image"}, [0, 1], has_image=True).background == "image"
    with pytest.raises(VidmatteError, match="MSG-VIM mattes people"):
        JobSpec.from_request({**GOOD, "model": "msgvim", "keep": []}, [], has_image=False)


def test_session_and_job_ids_cannot_name_another_folder(tmp_path):
    store = SessionStore(tmp_path)
    session = store.get(new_session_id())
    assert (
        session.folder.parent == tmp_path and session.job_folder(new_job_id()).parent == session.jobs_folder
    )
    for bad in ("..", "../../etc", "a" * 21, "a" * 22 + "/x"):
        with pytest.raises(KeyError):
            store.get(bad)
    for bad in ("..", "../people", "1234"):
        with pytest.raises(KeyError):
            session.job_folder(bad)
    assert session.public(f"{session.input_folder}/clip.mp4: not a readable video") == (
        "clip.mp4: not a readable video"
    )


def test_state_files_are_replaced_whole(tmp_path):
    path = tmp_path / "state.json"
    assert read_state(path) is None
    write_state(path, {"status": "running"})
    write_state(path, {"status": "done"})
    assert read_state(path) == {"status": "done"} and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_people_round_trip_are_clicked_and_drawn(tmp_path):
    masks = np.zeros((2, 40, 60), bool)
    masks[0, 10:38, 5:20] = True
    masks[1, 10:38, 35:50] = True
    people = FirstFramePeople([3, 5], masks)
    people.save(tmp_path)
    loaded = FirstFramePeople.load(tmp_path)
    assert loaded.ids == [3, 5] and np.array_equal(loaded.masks, masks)
    assert people.person_at(10, 20) == 3 and people.person_at(50, 20) == 5  # inside, and 1 px beside
    assert people.person_at(27, 2) is None and people.person_at(-1, 5) is None
    assert np.array_equal(people.union([5]), masks[1]) and not people.union([]).any()
    image = np.full((40, 60, 3), 200, np.uint8)
    view = render_people(image, people, kept=[3]).astype(int)
    inner = (slice(27, 35), slice(9, 16))  # below the numbers, which sit inside masks this small
    kept_pixels, dropped_pixels = view[inner], view[inner[0], slice(39, 46)]
    assert np.ptp(kept_pixels.mean(axis=(0, 1))) > 50  # tinted in its colour
    assert np.allclose(dropped_pixels, round(200 * DROPPED_DIM), atol=1)  # dimmed, untinted
    assert (view[:, 25:30] == 200).all()  # nobody there: untouched


def test_the_command_says_which_extra_it_needs(monkeypatch, capsys, tmp_path):
    for name in [n for n in sys.modules if n == "starlette" or n.startswith("starlette.")] or ["starlette"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "vidmatte.app.server", raising=False)
    assert main(["app", "--workdir", str(tmp_path / "sessions"), "--port", "1"]) == 2
    assert "pip install 'vidmatte[app]'" in capsys.readouterr().err


@pytest.mark.slow
def test_jobs_run_in_process_keep_the_chosen_person_and_report_errors_as_the_command_line(tmp_path):
    width, height, frames = 256, 144, 6
    clip = write_clip(tmp_path / "clip.mp4", [two_people(i, width, height) for i in range(frames)])
    session = SessionStore(tmp_path / "sessions").get(new_session_id())
    session.people_folder.mkdir(parents=True)
    write_state(session.video_record, {"path": str(clip), "name": clip.name})
    analyse(str(session.people_folder), "cpu")
    assert read_state(session.people_folder / STATE_FILE)["status"] == "done"
    people = FirstFramePeople.load(session.people_folder)
    assert len(people.ids) == 2
    left = left_columns(0, width, height)
    (on_the_left,) = [p for p, m in zip(people.ids, people.masks, strict=True) if m[:, left].mean() > 0.3]

    job = session.job_folder(new_job_id())
    job.mkdir(parents=True)
    JobSpec("adam", [on_the_left], ["alpha", "composite"], "mp4", "green").save(job / JOB_FILE)
    run_job(str(job), "cpu")
    state = read_state(job / STATE_FILE)
    assert state["status"] == "done" and state["frames_done"] == frames
    assert [o["filename"] for o in state["outputs"]] == ["clip-alpha.mp4", "clip-composite.mp4"]
    first_mask = read_grey_u8(job / FIRST_MASK_FILE) >= 128
    assert np.array_equal(first_mask, people.union([on_the_left]))
    with av.open(str(job / "preview" / "preview.mp4")) as container:
        previews = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(previews) == frames and previews[0].shape == (height, 3 * width, 3)
    assert state["live_last"] == frames - 1 and (job / "preview" / "live" / f"{frames - 1}.jpg").is_file()

    failing = session.job_folder(new_job_id())
    failing.mkdir()
    JobSpec("adam", [on_the_left], ["rgba"], "mp4", "green").save(failing / JOB_FILE)
    run_job(str(failing), "cpu")
    state = read_state(failing / STATE_FILE)
    assert state["status"] == "failed"
    assert state["error"].startswith("vidmatte: error: ") and "cannot hold transparency" in state["error"]
    assert "\n" not in state["error"] and not list((failing / "out").glob("*"))
    assert json.loads((failing / JOB_FILE).read_text())["outputs"] == ["rgba"]


def test_a_painted_first_mask_lets_adam_run_without_a_kept_person():
    painted = {**GOOD, "keep": []}
    assert JobSpec.from_request(painted, [0, 1], has_image=False, painted=True).keep == []
    with pytest.raises(VidmatteError, match="nobody is kept"):
        JobSpec.from_request({**painted, "model": "msgvim"}, [0, 1], has_image=False, painted=True)
