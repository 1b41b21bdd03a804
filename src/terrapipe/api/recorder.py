"""Group commit for async jobs: one thread records every job submitted meanwhile in one
transaction, and answers each request when its row is committed.

SQLite has one writer at a time and the runner process records nodes too: forty request
threads taking turns at the write lock (each waiting out SQLite's busy back-off) made a
submit cost hundreds of milliseconds under load. One recorder thread that takes whatever
queued up while it was committing turns N submits into one commit.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

from terrapipe.core.runs import Run

_STOP = object()
MAX_BATCH = 500  # rows in one transaction at most


class JobRecorder:
    """Records run rows in batches on a thread of its own; :meth:`record` awaits one."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], list[Run]]) -> None:
        self._write = write
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    async def record(self, row: dict[str, Any]) -> Run:
        """Record ``row`` (with whatever else is waiting) and return the recorded run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Run] = loop.create_future()
        self._start()
        self._queue.put((row, loop, future))
        return await future

    def _start(self) -> None:
        with self._mutex:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="terrapipe-job-recorder", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        with self._mutex:
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread.join(5)
                self._thread = None

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(item)
            try:
                recorded = self._write([row for row, _, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiting request gets it
                for _, loop, future in batch:
                    loop.call_soon_threadsafe(_fail, future, exc)
                continue
            for (_, loop, future), run in zip(batch, recorded, strict=True):
                loop.call_soon_threadsafe(_done, future, run)


def _done(future: asyncio.Future, run: Run) -> None:
    if not future.done():
        future.set_result(run)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
