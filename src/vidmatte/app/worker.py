"""What a worker process runs: the first-frame analysis of an opened video, and a matting job.

Both write their progress and result into a state file of their folder (:mod:`.progress`), which the
server reads for the page; an error is recorded as the one line the command line would print. SIGTERM
(the page's Cancel) stops a job as Ctrl-C stops ``vidmatte matte``: partial outputs are removed; the
server then removes the job's folder.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vidmatte.app.correction import corrected_mask, load_correction
from vidmatte.app.downloads import describe_outputs
from vidmatte.app.job_spec import IMAGE_BACKGROUND, JobSpec
from vidmatte.app.people import FIRST_FRAME_FILE, FirstFramePeople, find_people, match_tracks
from vidmatte.app.progress import JobProgress
from vidmatte.app.sessions import Session
from vidmatte.app.side_by_side import SideBySide
from vidmatte.app.state_file import read_state
from vidmatte.errors import VidmatteError
from vidmatte.inference.outputs import MattedFrame
from vidmatte.io.frames import write_image
from vidmatte.io.reader import open_frames

STATE_FILE = "state.json"
JOB_FILE = "job.json"
FIRST_MASK_FILE = "first-mask.png"
TRACKS_FILE = "tracks.json"
OUT_FOLDER = "out"
PREVIEW_FOLDER = "preview"
CANCELLED_EXIT = 128 + signal.SIGTERM


class Cancelled(KeyboardInterrupt):
    """SIGTERM from the server: stop as on Ctrl-C (partial outputs removed)."""


def _cancel(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not interrupt the clean-up
    raise Cancelled


@contextlib.contextmanager
def _reported(progress: JobProgress, session: Session) -> Iterator[None]:
    """Record how the task ended in its state file; exit quietly when cancelled."""
    previous = signal.signal(signal.SIGTERM, _cancel)
    try:
        yield
    except VidmatteError as error:
        progress.fail(f"vidmatte: error: {session.public(str(error))}")
    except Cancelled:
        sys.exit(CANCELLED_EXIT)
    except Exception as error:
        traceback.print_exc()
        progress.fail(f"vidmatte: internal error: {type(error).__name__}: {error}")
    finally:
        signal.signal(signal.SIGTERM, previous)


def video_path(session: Session) -> Path:
    """The video the session opened."""
    record = read_state(session.video_record)
    if record is None:
        raise VidmatteError("no video is open in this session")
    return Path(record["path"])


def background_image(session: Session) -> Path:
    """The session's uploaded background image."""
    images = sorted(session.background_folder.glob("*")) if session.background_folder.is_dir() else []
    if not images:
        raise VidmatteError("no background image was uploaded")
    return images[-1]


def analyse(people_folder: str, device: str) -> None:
    """Find the people on the first frame of the session's video (into the session's ``people/``)."""
    from vidmatte.segmentation.tracks import load_person_models

    folder = Path(people_folder)
    session = Session.at(folder.parent)
    progress = JobProgress(folder / STATE_FILE, None)
    with _reported(progress, session):
        video = video_path(session)
        detect, segment = load_person_models(device)
        progress.phase("finding people")
        image, people, info = find_people(video, detect, segment)
        write_image(folder / FIRST_FRAME_FILE, image)
        people.save(folder)
        progress.finish(
            width=info.width,
            height=info.height,
            frames_total=info.frame_count,
            frame_rate=float(info.frame_rate),
            people=people.ids,
        )


def run_job(job_folder: str, device: str) -> None:
    """Run the matting job in ``job_folder`` (its settings in ``job.json``)."""
    from vidmatte.inference.video import matte_video

    job = Path(job_folder)
    session = Session.at(job.parent.parent)
    progress = JobProgress(job / STATE_FILE, None)
    with _reported(progress, session):
        spec = JobSpec.load(job / JOB_FILE)
        video = video_path(session)
        with open_frames(video) as reader:
            info = reader.info
        progress.state["frames_total"] = info.frame_count
        people = FirstFramePeople.load(session.people_folder)
        options: dict[str, object] = {}
        instances: dict[str, int] = {}
        correction = load_correction(session.folder)
        if spec.model == "adam" and (people.ids or correction is not None):
            mask = corrected_mask(people.union(spec.keep), correction)
            if not mask.any():
                raise VidmatteError("the first-frame mask is empty: keep a person, or paint one")
            write_image(job / FIRST_MASK_FILE, mask.astype(np.uint8) * 255)
            options["first_mask"] = job / FIRST_MASK_FILE
        elif spec.model == "adam":
            options["segmentor"] = "own"  # nobody found: the model's own first-frame head
        else:
            options["masks"] = _kept_tracks(video, people, spec.keep, job / TRACKS_FILE, device, progress)
            instances = {f"{i:03d}": person for i, person in enumerate(spec.keep)}
        background = background_image(session) if spec.background == IMAGE_BACKGROUND else spec.background
        progress.phase("matting")
        (job / PREVIEW_FOLDER).mkdir(exist_ok=True)
        with SideBySide(job / PREVIEW_FOLDER, info, background) as preview:
            done = 0

            def on_frame(matted: MattedFrame) -> None:
                nonlocal done
                done += 1
                preview.add(matted)
                first, last = preview.live_frames
                progress.frames(done, live_first=first, live_last=last)

            result = matte_video(
                video,
                job / OUT_FOLDER,
                model=spec.model,
                outputs=spec.outputs,
                format=spec.format,
                background=background,
                device=device,
                progress=False,
                on_frame=on_frame,
                **options,
            )
        outputs = describe_outputs(result.outputs, job, video.name, instances)
        progress.finish(outputs=outputs, frames_done=result.frames, fps=result.fps)


def _kept_tracks(
    video: Path, people: FirstFramePeople, keep: list[int], path: Path, device: str, progress: JobProgress
) -> Path:
    """Track the people of the whole video and write the tracks of the kept ones (YouTube-VIS JSON)."""
    from vidmatte.segmentation.tracks import PersonTracks, build_person_tracks, load_person_models

    detect, segment = load_person_models(device)
    progress.phase("tracking people")
    with open_frames(video) as frames:
        tracks = build_person_tracks(
            (frame.image for frame in frames), detect=detect, segment=segment, progress=progress.frames
        )
    kept = match_tracks(people, keep, tracks)
    PersonTracks(kept, tracks.frame_count, tracks.height, tracks.width).write_json(path)
    return path
