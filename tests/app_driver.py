"""Drives ``vidmatte app`` in Debian's headless Chromium (Selenium with the system chromedriver; no
browser is downloaded), on clips of two real people: shared by tests/test_app.py and
benchmarks/app_screenshot.py, so that the README's screenshot comes from the run the tests make."""

from __future__ import annotations

import base64
import contextlib
import itertools
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import uvicorn
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from skimage import data as samples

from vidmatte.app.server import AppSettings, build_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WALL = (200, 196, 190)  # a plain wall behind the two people


def person_photo(height: int) -> np.ndarray:
    """NASA's astronaut (public domain), head to chest without the flag and the shuttle, ``height`` tall.

    Returns:
        ``(height, 0.8 * height, 3)`` uint8 RGB.
    """
    crop = samples.astronaut()[:340, 96:368]
    return np.asarray(Image.fromarray(crop).resize((round(height * 0.8), height), Image.BILINEAR))


def two_people(index: int, width: int = 256, height: int = 144, step: int = 1) -> np.ndarray:
    """Frame ``index`` of a clip of two people side by side (the photograph and its mirror image), each
    moving ``step`` pixels a frame towards the middle for 8 frames, then back.

    Returns:
        ``(height, width, 3)`` uint8 RGB; the left person's columns are
        ``left_columns(index, width, height, step)``.
    """
    photo = person_photo(round(height * 0.97))
    canvas = np.full((height, width, 3), WALL, np.uint8)
    left = left_columns(index, width, height, step)
    canvas[height - photo.shape[0] :, left] = photo
    right = slice(width - left.stop, width - left.start)
    canvas[height - photo.shape[0] :, right] = photo[:, ::-1]
    return canvas


def left_columns(index: int, width: int = 256, height: int = 144, step: int = 1) -> slice:
    """The columns of the left person on frame ``index`` of :func:`two_people`."""
    photo_width = round(round(height * 0.97) * 0.8)
    offset = width // 32 + step * (index % 8 if index % 16 < 8 else 8 - index % 8)
    return slice(offset, offset + photo_width)


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 10) -> Path:
    """An H.264 video of ``frames`` (nearly lossless)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv444p", {"crf": "12"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, "rgb24")))
        container.mux(stream.encode(None))
    return path


@contextlib.contextmanager
def running_app(settings: AppSettings) -> Iterator[str]:
    """The page's server on a free port of 127.0.0.1, in a thread; yields its address."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    server = uvicorn.Server(uvicorn.Config(build_app(settings), log_level="warning"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "the server to start")
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


@contextlib.contextmanager
def chromium(downloads: Path, width: int = 1100, height: int = 1000) -> Iterator[WebDriver]:
    """Debian's Chromium, headless, with a fresh profile; downloads go to ``downloads``."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    with tempfile.TemporaryDirectory(prefix="vidmatte-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, describe: Callable[[], str] | None = None
) -> Any:
    """Poll ``condition`` until it is truthy (returned) or ``timeout`` seconds pass (AssertionError,
    with what ``describe`` says of the situation)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    situation = f" ({describe()})" if describe is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{situation}")


class AppPage:
    """One browser tab on the page, with the steps a person takes.

    Args:
        driver: the browser.
        base: the server's address.
    """

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base

    def open_new_session(self) -> str:
        """Load the page afresh (a new session); its session id."""
        self.driver.get(self.base + "/")
        WebDriverWait(self.driver, 20).until(lambda d: d.find_element(By.ID, "open-section").is_displayed())
        return self.session_id

    @property
    def session_id(self) -> str:
        return self.driver.current_url.rstrip("/").rsplit("/", 1)[-1]

    def element(self, element_id: str):
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return self.element(element_id).text

    def error(self) -> str:
        """The error line the page shows ('' when none)."""
        error = self.element("error")
        return error.text if error.is_displayed() else ""

    def upload(self, path: Path) -> None:
        """Choose ``path`` in the file chooser (the page uploads it at once)."""
        self.element("file").send_keys(str(path))

    def situation(self) -> str:
        """What the page shows of the job, for a failure message."""
        return f"progress {self.text('progress-text')!r}, error {self.error()!r}"

    def upload_background(self, path: Path) -> None:
        """Upload ``path`` as the composite's background; wait until the page takes it or says why not."""
        self.element("background-file").send_keys(str(path))
        chosen = lambda: self.element("use-image").is_selected() or self.error()  # noqa: E731
        wait_for(chosen, 20, "the background")

    def wait_for_people(self, timeout: float = 180) -> list[int]:
        """Wait until the first frame's people are shown; their ids."""
        wait_for(lambda: self.element("people-figure").is_displayed() or self.error(), timeout, "the people")
        assert not self.error(), self.error()
        wait_for(
            lambda: self.driver.execute_script("return document.getElementById('people-view').complete"),
            20,
            "the first frame",
        )
        boxes = self.driver.find_elements(By.CSS_SELECTOR, "#people-list input[type=checkbox]")
        return [int(box.get_attribute("data-person")) for box in boxes]

    def kept(self) -> list[int]:
        boxes = self.driver.find_elements(By.CSS_SELECTOR, "#people-list input[type=checkbox]")
        return [int(b.get_attribute("data-person")) for b in boxes if b.is_selected()]

    def click_frame(self, x: float, y: float) -> None:
        """Click the first frame at pixel ``(x, y)`` of the video and wait for the page to redraw."""
        view = self.element("people-view")
        before = view.get_attribute("data-source")
        offset = self._offset(view, x, y)
        ActionChains(self.driver).move_to_element_with_offset(view, *offset).click().perform()
        self._wait_for_redraw(before, "the click's redraw")

    def paint(self, mode: str, points: list[tuple[float, float]], radius: int) -> None:
        """Paint a stroke through ``points`` (pixels of the video) with the ``mode`` tool ("add",
        "erase") and a brush of ``radius`` pixels, then wait for the page to redraw."""
        self.driver.find_element(By.CSS_SELECTOR, f"input[name=tool][value={mode}]").click()
        self.driver.execute_script(
            "const b = document.getElementById('brush'); b.value = arguments[0];"
            "b.dispatchEvent(new Event('change', {bubbles: true}))",
            radius,
        )
        view, canvas = self.element("people-view"), self.element("paint")
        before = view.get_attribute("data-source")
        offsets = [self._offset(view, x, y) for x, y in points]
        actions = ActionChains(self.driver).move_to_element_with_offset(canvas, *offsets[0]).click_and_hold()
        for (x0, y0), (x1, y1) in itertools.pairwise(offsets):
            actions.move_by_offset(x1 - x0, y1 - y0)
        actions.release().perform()
        self._wait_for_redraw(before, "the painting")
        self.driver.find_element(By.CSS_SELECTOR, "input[name=tool][value=pick]").click()

    def _wait_for_redraw(self, before: str | None, what: str) -> None:
        view = self.element("people-view")
        wait_for(lambda: view.get_attribute("data-source") != before or self.error(), 20, what)
        loaded = "const v = arguments[0]; return v.complete && v.naturalWidth > 0"
        wait_for(lambda: self.driver.execute_script(loaded, view), 20, what)

    def _offset(self, view, x: float, y: float) -> tuple[int, int]:
        """Selenium's offset (from the element's centre, in CSS pixels) of pixel ``(x, y)`` of the frame."""
        natural_width, natural_height, shown_width, shown_height = self.driver.execute_script(
            "const v = arguments[0]; return [v.naturalWidth, v.naturalHeight, v.clientWidth, v.clientHeight]",
            view,
        )
        dx = (x + 0.5) * shown_width / natural_width - shown_width / 2
        dy = (y + 0.5) * shown_height / natural_height - shown_height / 2
        return round(dx), round(dy)

    def start(
        self, model: str, outputs: tuple[str, ...] = ("alpha", "composite"), format: str = "mp4"
    ) -> None:
        """Choose the model, outputs and format, and press Start."""
        self.driver.find_element(By.CSS_SELECTOR, f"input[name=model][value={model}]").click()
        for box in self.driver.find_elements(By.CSS_SELECTOR, "input[name=outputs]"):
            if box.is_selected() != (box.get_attribute("value") in outputs):
                box.click()
        Select(self.element("format")).select_by_value(format)
        self.element("start").click()
        wait_for(lambda: self.element("job-section").is_displayed() or self.error(), 20, "the job to start")
        assert not self.error(), self.error()

    def frames_shown(self) -> int:
        """Distinct live preview frames the page has shown for the current job."""
        return int(self.element("live").get_attribute("data-frames-shown") or 0)

    def wait_until_done(self, timeout: float = 600) -> None:
        wait_for(
            lambda: self.text("progress-text").startswith(("Done", "Failed")) or self.error(),
            timeout,
            "the job",
        )
        assert not self.error(), self.error()

    def show(self, element_id: str) -> None:
        """Scroll ``element_id`` into view (a browser plays a muted video only while it is seen)."""
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", self.element(element_id))

    def screenshot(self, path: Path) -> None:
        """Save the whole page (not only what the window shows) as PNG."""
        width, height = self.driver.execute_script(
            "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight]"
        )
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        path.write_bytes(base64.b64decode(shot["data"]))

    def preview_video(self) -> dict[str, float]:
        """The finished preview video's ``readyState``, ``currentTime`` and ``duration``."""
        return self.driver.execute_script(
            "const v = document.getElementById('preview');"
            "return {ready: v.readyState, time: v.currentTime, duration: v.duration, hidden: v.hidden}"
        )

    def downloads(self) -> dict[str, tuple[str, str]]:
        """The page's download links: label -> (file name, href)."""
        links = self.driver.find_elements(By.CSS_SELECTOR, "#downloads a")
        return {link.text: (link.get_attribute("download"), link.get_attribute("href")) for link in links}
