"""One background thread per process that flushes every running run's records.

While a run executes, what it records is buffered and written every quarter second, and
the run's cancel flag is read at the same time, so the scheduler never waits for the
database and a long node still sees a cancel. One thread per run did this before: for a
short run (a service's job of one node) starting and joining that thread cost a fifth of
the run. One thread serves every run of the process instead, started with the first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("terrapipe.flusher")


class Flushing:
    """A run's registration: what to call every interval, and whether it still wants it."""

    def __init__(self, flush: Callable[[], None], due: float) -> None:
        self.flush = flush
        self.due = due  # monotonic time of its next flush
        self.active = True
        self.busy = threading.Lock()  # held while its flush runs


class Flusher:
    """Calls each registered ``flush`` every ``interval`` seconds from its registration
    (as a thread of its own would), on one daemon thread."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._registered: list[Flushing] = []
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._wakes_at = 0.0  # when the loop next wakes by itself (monotonic)

    def add(self, flush: Callable[[], None]) -> Flushing:
        """Flush ``flush`` every interval from now on, until :meth:`remove`."""
        entry = Flushing(flush, time.monotonic() + self.interval)
        with self._lock:
            self._registered.append(entry)
            if entry.due < self._wakes_at:  # due before the loop wakes: wake it now
                self._wake.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="terrapipe-writer", daemon=True
                )
                self._thread.start()
        return entry

    def remove(self, entry: Flushing) -> None:
        """Stop flushing ``entry``; once this returns, its flush is not running and will
        not run again."""
        with entry.busy:
            entry.active = False
        with self._lock:
            if entry in self._registered:
                self._registered.remove(entry)

    def _loop(self) -> None:
        while True:
            with self._lock:
                entries = list(self._registered)
            now = time.monotonic()
            for entry in entries:
                if entry.due > now:
                    continue
                with entry.busy:
                    if not entry.active:
                        continue
                    try:
                        entry.flush()
                    except Exception:  # noqa: BLE001 - one run's failure must not stop others
                        log.exception("a background flush failed; the run's final flush retries")
                    entry.due = time.monotonic() + self.interval
            with self._lock:
                soonest = min((e.due for e in self._registered), default=None)
                wait = self.interval if soonest is None else max(0.0, soonest - time.monotonic())
                # an entry is due an interval after it is added, so never before the loop
                # wakes by itself: waking the loop for every new run only cost (see add)
                self._wakes_at = time.monotonic() + wait
            self._wake.wait(wait)
            self._wake.clear()


_shared: Flusher | None = None
_shared_lock = threading.Lock()


def shared_flusher(interval: float) -> Flusher:
    """The process's flusher (created on first use, with the first caller's interval)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Flusher(interval)
        return _shared
