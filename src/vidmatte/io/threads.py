"""Background threads with small bounded queues, so that decoding and encoding overlap the model.

Both sides stop cleanly: an error in the thread reaches the caller in order (after the items produced
before it), and closing early wakes and joins the thread. FFmpeg releases the GIL while it decodes,
encodes and converts pixels, so these threads run in parallel with the model.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

# how often a blocked thread looks whether it has been told to stop
_POLL_SECONDS = 0.05
_ITEM, _END, _ERROR = range(3)


class Prefetcher(Generic[T]):
    """Iterates over ``items`` in a background thread, at most ``depth`` items ahead of the caller.

    The iterator is advanced (and finally closed) only by the thread, so a generator holding a file
    open releases it in its own ``finally`` whether it ends, fails or is abandoned through :meth:`close`.
    """

    def __init__(self, items: Iterator[T], depth: int, name: str) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._items = items
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(_ITEM, item):
                    return
            self._put(_END, None)
        except BaseException as error:  # handed over to the caller, who re-raises it
            self._put(_ERROR, error)
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def _put(self, kind: int, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value  # type: ignore[return-value]
        self._done = True
        if kind == _ERROR:
            raise value  # type: ignore[misc]
        raise StopIteration

    def close(self) -> None:
        """Stop the thread (if still running) and wait for it; idempotent."""
        self._done = True
        self._stop.set()
        self._thread.join()


class BackgroundWorker(Generic[T]):
    """Hands items to ``handle`` in a background thread through a queue of at most ``depth`` items.

    The first error raised by ``handle`` stops the worker; it is re-raised by the next :meth:`submit`
    or by :meth:`join`.
    """

    def __init__(self, handle: Callable[[T], None], depth: int, name: str) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._handle = handle
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                kind, item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if kind == _END:
                return
            try:
                self._handle(item)  # type: ignore[arg-type]
            except BaseException as error:  # re-raised in the caller's thread
                self._error = error
                return

    def submit(self, item: T) -> None:
        """Queue ``item``, blocking while the queue is full.

        Raises:
            BaseException: whatever ``handle`` raised on an earlier item.
        """
        self._put(_ITEM, item)

    def _put(self, kind: int, item: object) -> None:
        while True:
            self._raise_error()
            if not self._thread.is_alive():
                raise RuntimeError("the background worker has stopped")
            try:
                self._queue.put((kind, item), timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def join(self) -> None:
        """Wait until every queued item is handled.

        Raises:
            BaseException: whatever ``handle`` raised.
        """
        if self._thread.is_alive():
            self._put(_END, None)
            self._thread.join()
        self._raise_error()

    def cancel(self) -> None:
        """Stop without handling the queued items and wait for the thread; never raises."""
        self._stop.set()
        self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
