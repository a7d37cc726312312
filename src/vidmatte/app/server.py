"""The page's server: a small Starlette application over the session folders and the worker processes.

Every request names its session (``/api/s/<session>/...``); the session's state lives in its folder, so
a reloaded page, or a restarted server, finds it again. Requests that change a session are serialised by
one lock; uploads stream to disk, counted against the size limit as they come.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vidmatte.app import worker
from vidmatte.app.correction import (
    CORRECTION_FILE,
    MAX_RADIUS,
    MODES,
    load_correction,
    paint_stroke,
    save_correction,
)
from vidmatte.app.job_spec import JobSpec
from vidmatte.app.people import FIRST_FRAME_FILE, FirstFramePeople
from vidmatte.app.people_view import render_people
from vidmatte.app.sessions import Session, SessionStore, new_job_id, new_session_id
from vidmatte.app.side_by_side import VIDEO_FILE, live_path
from vidmatte.app.state_file import read_state, write_state
from vidmatte.app.workers import Workers
from vidmatte.errors import VidmatteError
from vidmatte.inference.backgrounds import open_background
from vidmatte.io.frames import read_rgb_u8
from vidmatte.io.reader import open_frames
from vidmatte.segmentation.preview import track_colours

STATIC = Path(__file__).with_name("static")
DEFAULT_MAX_UPLOAD_MB = 2048
MAX_STROKE_POINTS = 10_000
LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1"]
NO_STORE = {"Cache-Control": "no-store"}
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^\w .()+-]")


@dataclass(frozen=True)
class AppSettings:
    """How the server runs.

    Attributes:
        workdir: the folder that holds the sessions' folders; nothing is written outside it.
        device: where the workers run the models (``cpu``, ``cuda``).
        max_upload: the largest upload accepted, in bytes.
        local: the server listens on this machine alone. Only then may the page open a video by its
            path on this machine (a path reads any file the server can), and requests must then name
            this machine as their host, so that no web site can reach the page through a name of its
            own that points here (DNS rebinding).
    """

    workdir: Path
    device: str = "cpu"
    max_upload: int = DEFAULT_MAX_UPLOAD_MB * 2**20
    local: bool = True


class PageError(Exception):
    """A request the page must be told about: one line, and the HTTP status to send it with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def is_local(host: str) -> bool:
    """``host`` is reachable from this machine only (a loopback address or ``localhost``).

    >>> is_local("127.0.0.1"), is_local("localhost"), is_local("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def upload_name(name: str, default: str) -> str:
    """A file name for an upload: its last component, without characters that a shell or the file
    system would trip on, never hidden.

    >>> upload_name("../../etc/passwd", "v"), upload_name("my clip;1.mp4", "v"), upload_name("..", "v")
    ('passwd', 'my clip_1.mp4', 'v')
    """
    cleaned = _UNSAFE_NAME_CHARACTERS.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(". ")
    return cleaned[:120] or default


def upload_refusal(name: str, limit: int) -> str:
    """Why an upload is refused (the page says the same before it sends a file too large).

    >>> upload_refusal("clip.mp4", 3 * 2**20)
    'clip.mp4: larger than the upload limit of 3 MB (vidmatte app --max-upload)'
    """
    return f"{name}: larger than the upload limit of {limit // 2**20} MB (vidmatte app --max-upload)"


class Page:
    """The server's state and request handlers.

    Args:
        settings: how it runs.
    """

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self.sessions = SessionStore(settings.workdir)
        self.workers = Workers()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------- state
    def state(self, session: Session) -> dict[str, Any]:
        """Everything the page shows of a session."""
        record = read_state(session.video_record)
        people = self._people_state(session)
        job_id = session.latest_job()
        background = session.background_folder
        backgrounds = sorted(background.glob("*")) if background.is_dir() else []
        return {
            "video": {"name": record["name"]} if record else None,
            "people": people,
            "background": backgrounds[-1].name if backgrounds else None,
            "job": self._job_state(session, job_id) if job_id else None,
            "allow_paths": self.settings.local,
            "max_upload": self.settings.max_upload,
        }

    def _people_state(self, session: Session) -> dict[str, Any] | None:
        folder = session.people_folder
        state = self._task_state(folder, folder / worker.STATE_FILE)
        if state is None or state["status"] != "done":
            return state
        kept = self._kept(session, state["people"])
        painting = session.folder / CORRECTION_FILE
        # when the correction was last painted (so that the page redraws), None if never
        state["painting"] = painting.stat().st_mtime_ns if painting.is_file() else None
        colours = (track_colours(state["people"]) * 255).round().astype(int)
        state["people"] = [
            {"id": person, "colour": "#{:02x}{:02x}{:02x}".format(*colour), "kept": person in kept}
            for person, colour in zip(state["people"], colours, strict=True)
        ]
        return state

    def _job_state(self, session: Session, job_id: str) -> dict[str, Any] | None:
        folder = session.job_folder(job_id)
        state = self._task_state(folder, folder / worker.STATE_FILE)
        if state is None:
            return None
        spec = read_state(folder / worker.JOB_FILE)
        preview = (folder / worker.PREVIEW_FOLDER / VIDEO_FILE).is_file()
        return {**state, "id": job_id, "settings": spec, "preview": preview}

    def _task_state(self, folder: Path, path: Path) -> dict[str, Any] | None:
        """A worker's state file, marked failed when its worker ended without finishing (killed, or the
        server restarted while it ran)."""
        state = read_state(path)
        if state is None or state["status"] != "running" or self.workers.running(folder):
            return state
        with self._lock:  # not while a cancellation ends the worker and removes the folder
            # read again: a worker that just ended wrote its last state before it did
            state = read_state(path)
            if state is not None and state["status"] == "running" and not self.workers.running(folder):
                code = self.workers.exit_code(folder)
                why = "the app was restarted" if code is None else f"its worker ended with exit code {code}"
                error = f"vidmatte: error: the task stopped before it finished ({why})"
                state.update(status="failed", error=error)
                write_state(path, state)
        return state

    def _kept(self, session: Session, people: list[int]) -> list[int]:
        selection = read_state(session.selection_file)
        return people if selection is None else [p for p in selection["kept"] if p in people]

    def _people(self, session: Session) -> FirstFramePeople:
        state = read_state(session.people_folder / worker.STATE_FILE)
        if state is None or state["status"] != "done":
            raise PageError("the people of the first frame are not known yet", 409)
        return FirstFramePeople.load(session.people_folder)

    # ------------------------------------------------------------------------------------- video
    async def upload(self, session: Session, request: Request) -> dict[str, Any]:
        """Stream an uploaded video into the session, then open it."""
        name = upload_name(request.query_params.get("name", ""), "video")
        with self._lock:
            self._refuse_second_video(session)
        path = await self._receive(request, session.input_folder, name)
        try:
            return await run_in_threadpool(self.open_video, session, path, name)
        finally:
            if read_state(session.video_record) is None:  # refused: keep nothing of it
                _remove_file_and_folder(path)

    def open_path(self, session: Session, data: Any) -> dict[str, Any]:
        """Open a video by its path on this machine."""
        if not self.settings.local:
            raise PageError("opening a path is off: the app listens beyond this machine; upload instead", 403)
        text = data.get("path") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise PageError("give the path of a video or of a folder of frames")
        path = Path(text.strip()).expanduser().absolute()
        return self.open_video(session, path, path.name)

    def open_video(self, session: Session, path: Path, name: str) -> dict[str, Any]:
        """Check ``path`` as any input is checked, record it as the session's video and start looking for
        its people."""
        with self._lock:
            self._refuse_second_video(session)
            try:
                with open_frames(path):  # decodes the first frame: a file that cannot give one fails here
                    pass
            except VidmatteError as error:
                raise PageError(f"vidmatte: error: {session.public(str(error))}") from None
            session.people_folder.mkdir(parents=True, exist_ok=True)
            write_state(session.video_record, {"path": str(path), "name": name})
            write_state(session.people_folder / worker.STATE_FILE, {"status": "running", "phase": "starting"})
            self.workers.start(session.people_folder, worker.analyse, self.settings.device)
        return self.state(session)

    def _refuse_second_video(self, session: Session) -> None:
        if read_state(session.video_record) is not None:
            raise PageError("this session has its video; open another one in a new session", 409)

    async def _receive(self, request: Request, folder: Path, name: str) -> Path:
        """Write the request's body to ``folder/name``, refusing it past the upload limit."""
        limit = self.settings.max_upload
        refusal = f"vidmatte: error: {upload_refusal(name, limit)}"
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PageError(refusal, 413)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        size = 0
        try:
            with path.open("wb") as file:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise PageError(refusal, 413)
                    file.write(chunk)
        except BaseException:
            _remove_file_and_folder(path)
            raise
        return path

    async def upload_background(self, session: Session, request: Request) -> dict[str, Any]:
        """Stream a background image (or video) into the session, replacing the previous one."""
        if read_state(session.video_record) is None:
            raise PageError("open a video first", 409)
        name = upload_name(request.query_params.get("name", ""), "background")
        incoming = session.incoming_folder
        path = await self._receive(request, incoming, name)
        try:
            await run_in_threadpool(_check_background, session, path)
            with self._lock:
                shutil.rmtree(session.background_folder, ignore_errors=True)
                incoming.rename(session.background_folder)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return self.state(session)

    # ------------------------------------------------------------------------------------ people
    def people_view(self, session: Session) -> bytes:
        """The first frame with its people marked, as PNG."""
        people = self._people(session)
        image = read_rgb_u8(session.people_folder / FIRST_FRAME_FILE)
        view = render_people(image, people, self._kept(session, people.ids), load_correction(session.folder))
        buffer = io.BytesIO()
        Image.fromarray(view).save(buffer, format="PNG")
        return buffer.getvalue()

    def click(self, session: Session, data: Any) -> dict[str, Any]:
        """Keep or drop the person at the clicked pixel (``{"x", "y"}`` in the frame's pixels)."""
        if not isinstance(data, dict) or not all(isinstance(data.get(k), int | float) for k in "xy"):
            raise PageError("a click needs x and y")
        with self._lock:
            people = self._people(session)
            person = people.person_at(float(data["x"]), float(data["y"]))
            if person is not None:
                kept = self._kept(session, people.ids)
                self._select(session, people, person, person not in kept)
        return {**self.state(session), "clicked": person}

    def keep(self, session: Session, data: Any) -> dict[str, Any]:
        """Keep (``{"person": id, "keep": true}``) or drop a person."""
        if not isinstance(data, dict) or not isinstance(data.get("keep"), bool):
            raise PageError("expected {person, keep}")
        with self._lock:
            people = self._people(session)
            if data.get("person") not in people.ids:
                raise PageError(f"no person {data.get('person')!r} on the first frame")
            self._select(session, people, data["person"], data["keep"])
        return self.state(session)

    def paint(self, session: Session, data: Any) -> dict[str, Any]:
        """Paint a stroke of AdaM's first-frame correction: ``{"mode": "add"|"erase", "radius": pixels,
        "points": [[x, y], ...]}`` in the frame's pixels."""
        if not isinstance(data, dict) or data.get("mode") not in MODES:
            raise PageError(f"a stroke's mode is one of {', '.join(MODES)}")
        radius, points = data.get("radius"), data.get("points")
        if not isinstance(radius, int | float) or not 0.5 <= radius <= MAX_RADIUS:
            raise PageError(f"a brush's radius is 0.5 to {MAX_RADIUS} pixels")
        if (
            not isinstance(points, list)
            or not 0 < len(points) <= MAX_STROKE_POINTS
            or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(c, int | float) for c in p)
                for p in points
            )
        ):
            raise PageError(f"a stroke has 1 to {MAX_STROKE_POINTS} points [x, y]")
        with self._lock:
            people = self._people(session)
            correction = load_correction(session.folder)
            if correction is None:
                correction = np.zeros(people.masks.shape[1:], np.uint8)
            save_correction(session.folder, paint_stroke(correction, points, radius, data["mode"]))
        return self.state(session)

    def clear_painting(self, session: Session) -> dict[str, Any]:
        """Remove the painted correction."""
        with self._lock:
            (session.folder / CORRECTION_FILE).unlink(missing_ok=True)
        return self.state(session)

    def _select(self, session: Session, people: FirstFramePeople, person: int, keep: bool) -> None:
        kept = set(self._kept(session, people.ids)) - {person} | ({person} if keep else set())
        write_state(session.selection_file, {"kept": sorted(kept)})

    # -------------------------------------------------------------------------------------- jobs
    def start_job(self, session: Session, data: Any) -> dict[str, Any]:
        """Start a matting job with the page's settings and the people kept."""
        with self._lock:
            latest = session.latest_job()
            if latest is not None and self.workers.running(session.job_folder(latest)):
                raise PageError("a job is running in this session; wait for it or cancel it", 409)
            people = self._people(session)
            has_image = session.background_folder.is_dir() and any(session.background_folder.iterdir())
            if isinstance(data, dict):
                data = {**data, "keep": self._kept(session, people.ids)}
            try:
                painted = (session.folder / CORRECTION_FILE).is_file()
                spec = JobSpec.from_request(data, people.ids, has_image, painted)
            except VidmatteError as error:
                raise PageError(f"vidmatte: error: {error}") from None
            folder = session.job_folder(new_job_id())
            folder.mkdir(parents=True)
            spec.save(folder / worker.JOB_FILE)
            write_state(folder / worker.STATE_FILE, {"status": "running", "phase": "starting"})
            self.workers.start(folder, worker.run_job, self.settings.device)
        return self.state(session)

    def cancel_job(self, session: Session, job: str) -> dict[str, Any]:
        """Stop a running job and remove everything it wrote."""
        folder = self._job_folder(session, job)
        with self._lock:
            state = read_state(folder / worker.STATE_FILE)
            if state is not None and state["status"] != "running":
                raise PageError(f"the job has {state['status'].replace('done', 'finished')}", 409)
            self.workers.stop(folder)
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                session.jobs_folder.rmdir()  # only if no other job is left in it
        return self.state(session)

    def preview_file(self, session: Session, job_id: str, frame: int | None = None) -> Path:
        """A job's preview video, or its live frame ``frame``."""
        folder = self._job_folder(session, job_id) / worker.PREVIEW_FOLDER
        path = folder / VIDEO_FILE if frame is None else live_path(folder, frame)
        if not path.is_file():
            raise PageError(f"no {path.name} (yet, or any more)", 404)
        return path

    def download(self, session: Session, job_id: str, index: int) -> tuple[Path, str]:
        """Output ``index`` of a finished job and the name to save it under."""
        state = read_state(self._job_folder(session, job_id) / worker.STATE_FILE) or {}
        outputs = state.get("outputs") or []
        if not 0 <= index < len(outputs):
            raise PageError(f"the job has no output {index}", 404)
        return self._job_folder(session, job_id) / outputs[index]["path"], outputs[index]["filename"]

    def _job_folder(self, session: Session, job_id: str) -> Path:
        folder = session.job_folder(job_id)
        if not folder.is_dir():
            raise PageError(f"no job {job_id} in this session", 404)
        return folder


def _check_background(session: Session, path: Path) -> None:
    try:
        open_background(path, 2, 2).close()
    except VidmatteError as error:
        raise PageError(f"vidmatte: error: {session.public(str(error))}") from None


def _remove_file_and_folder(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def build_app(settings: AppSettings) -> Starlette:
    """The Starlette application of the page.

    Args:
        settings: the working folder, device, upload limit and whether it serves this machine alone.
    """
    page = Page(settings)

    def session_of(request: Request) -> Session:
        try:
            return page.sessions.get(request.path_params["session"])
        except KeyError:
            raise PageError("no such session", 404) from None

    def endpoint(work: Callable[..., Any], *, body: bool = False, stream: bool = False) -> Callable:
        """A route's endpoint: ``work(session, [JSON body | the request], **path parameters)``, in a
        worker thread unless it streams the request; a dict result is sent as JSON, a refusal as
        ``{"error": line}``."""

        async def run(request: Request) -> Response:
            params = {k: v for k, v in request.path_params.items() if k != "session"}
            try:
                session = session_of(request)
                if stream:
                    result = await work(session, request)
                else:
                    data = [await _json(request)] if body else []
                    result = await run_in_threadpool(work, session, *data, **params)
            except PageError as error:
                return JSONResponse({"error": str(error)}, error.status)
            except KeyError:  # a malformed job id
                return JSONResponse({"error": "not found"}, 404)
            return result if isinstance(result, Response) else JSONResponse(result, headers=NO_STORE)

        return run

    def index(session: Session) -> Response:
        return FileResponse(STATIC / "index.html", headers=NO_STORE)

    def people_png(session: Session) -> Response:
        return Response(page.people_view(session), media_type="image/png", headers=NO_STORE)

    def live(session: Session, job: str, frame: int) -> Response:
        return FileResponse(page.preview_file(session, job, frame))

    def preview(session: Session, job: str) -> Response:
        return FileResponse(page.preview_file(session, job), headers=NO_STORE)

    def download(session: Session, job: str, index: int) -> Response:
        path, name = page.download(session, job, index)
        return FileResponse(path, filename=name)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(page.workers.stop_all)

    api = "/api/s/{session}"
    job = api + "/jobs/{job}"
    routes = [
        Route("/", lambda request: RedirectResponse(f"/s/{new_session_id()}", 303)),
        Route("/s/{session}", endpoint(index)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route(f"{api}/state", endpoint(page.state)),
        Route(f"{api}/upload", endpoint(page.upload, stream=True), methods=["PUT"]),
        Route(f"{api}/open", endpoint(page.open_path, body=True), methods=["POST"]),
        Route(f"{api}/background", endpoint(page.upload_background, stream=True), methods=["PUT"]),
        Route(f"{api}/people.png", endpoint(people_png)),
        Route(f"{api}/click", endpoint(page.click, body=True), methods=["POST"]),
        Route(f"{api}/keep", endpoint(page.keep, body=True), methods=["POST"]),
        Route(f"{api}/paint", endpoint(page.paint, body=True), methods=["POST"]),
        Route(f"{api}/paint/clear", endpoint(page.clear_painting), methods=["POST"]),
        Route(f"{api}/jobs", endpoint(page.start_job, body=True), methods=["POST"]),
        Route(f"{job}/cancel", endpoint(page.cancel_job), methods=["POST"]),
        Route(job + "/live/{frame:int}.jpg", endpoint(live)),
        Route(f"{job}/preview.mp4", endpoint(preview)),
        Route(job + "/outputs/{index:int}", endpoint(download)),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS)] if settings.local else []
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise PageError("expected a JSON body") from None


def serve(settings: AppSettings, host: str, port: int) -> None:
    """Run the page's server until interrupted (Ctrl-C)."""
    settings.workdir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(build_app(settings), host=host, port=port, log_level="warning")
