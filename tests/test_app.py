"""``vidmatte app`` end to end in a real browser (Debian's headless Chromium): open a clip of two
people, keep one, matte, watch the preview, download; a bad upload; a cancelled job; a reload.

``benchmarks/app_screenshot.py`` runs the first test with ``VIDMATTE_APP_SCREENSHOT=FILE`` (and a
larger clip, ``VIDMATTE_APP_SIZE=512x288``) to take the README's screenshot from this same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
from app_driver import AppPage, chromium, left_columns, running_app, two_people, wait_for, write_clip
from PIL import Image
from starlette.requests import Request

from vidmatte.app.correction import ADDED
from vidmatte.app.server import AppSettings, Page, PageError
from vidmatte.cli import main
from vidmatte.io.frames import read_grey_u8

pytestmark = pytest.mark.slow
WIDTH, HEIGHT = (int(side) for side in os.environ.get("VIDMATTE_APP_SIZE", "256x144").split("x"))
FRAMES, RATE = 6, 10
BLUE = (40, 60, 200)
SESSION_LAYOUT = {"video.json", "input", "people", "selection.json", "correction.png", "jobs", "background"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("app") / "sessions"


@pytest.fixture(scope="module")
def server(workdir) -> str:
    with running_app(AppSettings(workdir, max_upload=2**20)) as base:
        yield base


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    with chromium(downloads) as driver:
        yield driver


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def person_regions(index: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The middle of the left and of the right person on frame ``index`` (from the chin down)."""
    left = left_columns(index, WIDTH, HEIGHT)
    margin = (left.stop - left.start) // 5
    rows = slice(HEIGHT // 3, HEIGHT)
    right = slice(WIDTH - left.stop + margin, WIDTH - left.start - margin)
    return (rows, slice(left.start + margin, left.stop - margin)), (rows, right)


def test_keep_one_of_two_people_matte_watch_and_download(server, browser, workdir, downloads, tmp_path):
    clip = write_clip(
        tmp_path / "two people.mp4", [two_people(i, WIDTH, HEIGHT) for i in range(FRAMES)], RATE
    )
    page = AppPage(browser, server)
    session = page.open_new_session()
    page.upload(clip)
    people = page.wait_for_people()
    assert len(people) == 2 and page.kept() == people
    # drop the person on the right: click their face
    left = left_columns(0, WIDTH, HEIGHT)
    page.click_frame(WIDTH - (left.start + left.stop) / 2, 0.3 * HEIGHT)
    (kept,) = page.kept()
    # composite over an uploaded picture, after one that is not a picture
    (tmp_path / "wall.png").write_text("not a picture")
    page.upload_background(tmp_path / "wall.png")
    assert page.error().startswith("vidmatte: error: wall.png: ")
    Image.new("RGB", (64, 48), BLUE).save(tmp_path / "blue.png")
    page.upload_background(tmp_path / "blue.png")
    assert not page.error() and page.text("background-name") == "blue.png"
    page.start("msgvim", outputs=("alpha", "composite"))
    page.wait_until_done()
    # the live preview plays every frame as it comes, then the finished preview video takes over
    wait_for(lambda: page.preview_video()["ready"] >= 2, 20, "the preview video")
    page.show("preview")
    assert page.frames_shown() == FRAMES
    video = page.preview_video()
    assert not video["hidden"] and video["duration"] == pytest.approx(FRAMES / RATE, abs=0.15)
    seen = {round(page.preview_video()["time"], 2)}
    wait_for(lambda: seen.add(round(page.preview_video()["time"], 2)) or len(seen) >= 3, 20, "playing")
    links = page.downloads()
    assert set(links) == {
        f"Alpha, person {kept}",
        f"Composite, person {kept}",
        "The people kept, colour-coded",
    }
    name, _ = links[f"Alpha, person {kept}"]
    assert name == f"two people-alpha-person{kept}.mp4"
    if os.environ.get("VIDMATTE_APP_SCREENSHOT"):
        page.screenshot(Path(os.environ["VIDMATTE_APP_SCREENSHOT"]))
    browser.find_element("link text", f"Alpha, person {kept}").click()
    alpha = downloads / name
    wait_for(lambda: alpha.exists() and not list(downloads.glob("*.crdownload")), 30, "the download")
    with av.open(str(alpha)) as container:
        mattes = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    assert len(mattes) == FRAMES
    for index, matte in enumerate(mattes):
        kept, dropped = person_regions(index)
        assert matte[kept].mean() > 0.5 * 255 and matte[dropped].mean() < 0.02 * 255
    (composite,) = (workdir / session / "jobs").glob(f"*/out/composite/{0:03d}.mp4")
    with av.open(str(composite)) as container:
        corner = next(container.decode(video=0)).to_ndarray(format="rgb24")[:8, :8]
    assert np.abs(corner.reshape(-1, 3).mean(axis=0) - BLUE).max() < 12  # over the uploaded picture
    assert {p.name for p in (workdir / session).iterdir()} <= SESSION_LAYOUT
    # a reload finds the finished job; a second tab is a session of its own
    browser.refresh()
    wait_for(lambda: set(page.downloads()) == set(links), 20, "the job after a reload")
    browser.switch_to.new_window("tab")
    try:
        other = AppPage(browser, server)
        assert other.open_new_session() != session
        assert not other.element("job-section").is_displayed() and not other.downloads()
    finally:
        browser.close()
        browser.switch_to.window(browser.window_handles[0])


def test_a_bad_upload_gives_the_command_line_error_on_the_page(
    server, browser, workdir, tmp_path, monkeypatch, capsys
):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video\n" * 50)
    monkeypatch.chdir(tmp_path)
    assert main(["matte", "broken.mp4", "--out", "out"]) == 2
    cli_line = capsys.readouterr().err.strip()
    assert cli_line.startswith("vidmatte: error: broken.mp4: ") and "\n" not in cli_line
    page = AppPage(browser, server)
    session = page.open_new_session()
    page.upload(broken)
    assert wait_for(page.error, 20, "the error") == cli_line
    assert page.element("open-section").is_displayed()  # another file can be tried
    assert files_under(workdir / session) == []  # nothing kept of it


def test_an_upload_over_the_limit_is_refused_by_the_page(server, browser, workdir, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"0" * (2**20 + 1))
    page = AppPage(browser, server)
    session = page.open_new_session()
    page.upload(big)
    refusal = "vidmatte: error: big.mp4: larger than the upload limit of 1 MB (vidmatte app --max-upload)"
    assert wait_for(page.error, 20, "the error") == refusal
    assert files_under(workdir / session) == []


def test_the_server_refuses_an_upload_over_the_limit_as_it_streams(tmp_path):
    page = Page(AppSettings(tmp_path / "sessions", max_upload=1000))
    session = page.sessions.get("b" * 22)
    chunks = [{"type": "http.request", "body": b"0" * 600, "more_body": True}] * 3

    async def receive():
        return chunks.pop(0)

    scope = {"type": "http", "method": "PUT", "headers": [], "query_string": b"name=big.mp4", "path": "/"}
    with pytest.raises(PageError, match=r"big\.mp4: larger than the upload limit") as refused:
        asyncio.run(page.upload(session, Request(scope, receive)))
    assert refused.value.status == 413 and files_under(session.folder) == []


def test_a_cancelled_job_survives_a_reload_and_leaves_nothing_but_the_session(
    server, browser, workdir, tmp_path
):
    clip = write_clip(tmp_path / "long.mp4", [two_people(i, WIDTH, HEIGHT) for i in range(200)], RATE)
    page = AppPage(browser, server)
    session = page.open_new_session()
    page.upload(clip)
    page.wait_for_people()
    # paint AdaM's first-frame mask down the wall between the two people
    gap = WIDTH / 2
    page.paint("add", [(gap, 0.2 * HEIGHT), (gap, 0.5 * HEIGHT), (gap, 0.8 * HEIGHT)], radius=3)
    painted = read_grey_u8(workdir / session / "correction.png") == ADDED
    stripe = (slice(round(0.25 * HEIGHT), round(0.75 * HEIGHT)), slice(round(gap) - 1, round(gap) + 2))
    assert painted[stripe].all() and painted.mean() < 0.1
    before = files_under(workdir / session)
    page.start("adam", outputs=("alpha", "composite", "rgba"), format="webm")
    wait_for(lambda: page.frames_shown() >= 1, 120, "the first matted frame", page.situation)
    progress = r"matting: \d+ / 200 frames · \d+\.\d fps · \d+ s left"
    wait_for(lambda: re.fullmatch(progress, page.text("progress-text")), 30, "the speed", page.situation)
    (first_mask,) = (workdir / session / "jobs").glob("*/first-mask.png")
    assert (read_grey_u8(first_mask) >= 128)[stripe].all()  # the painting is part of AdaM's first mask
    browser.refresh()  # the running job is found again
    wait_for(lambda: page.element("cancel").is_displayed(), 20, "the job after a reload", page.situation)
    assert any((workdir / session / "jobs").rglob("out/.alpha.webm.lock"))  # the output being written
    page.element("cancel").click()
    cancelled = lambda: page.text("progress-text").startswith("Cancelled")  # noqa: E731
    wait_for(cancelled, 30, "the cancellation", page.situation)
    assert files_under(workdir / session) == before
    assert not (workdir / session / "jobs").exists()


def test_a_local_server_answers_only_requests_that_name_this_machine(server):
    url = f"{server}/api/s/{'c' * 22}/state"
    assert json.loads(urllib.request.urlopen(url).read())["video"] is None
    # a web site whose name points here (DNS rebinding) must not reach the page
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Host": "attacker.example"}))
    assert refused.value.code == 400
