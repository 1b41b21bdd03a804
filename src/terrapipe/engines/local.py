"""The local engine: ready node instances run in a pool of threads in this process.

The scheduler thread owns the plan; worker threads only call ``execute_node``. Ctrl-C
(SIGINT) or ``terrapipe runs cancel`` sets the run's cancel event: no new node starts,
running nodes see ``ctx.cancelled`` and their results are discarded, the run ends
``cancelled``. Worker threads are daemons, so a task stuck in C code cannot keep the
process alive after the run is over.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from terrapipe.core.execute import execute_node
from terrapipe.core.plan import Instance, RunPlan
from terrapipe.core.runtime import StoreRuntime

_STOP = object()


class LocalEngine:
    """Runs a plan with ``workers`` threads (default: the number of cores)."""

    name = "local"

    def __init__(self, workers: int | None = None, *, grace: float = 3.0) -> None:
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.grace = grace

    def execute(
        self, runtime: StoreRuntime, on_update: Callable[[RunPlan], Any] | None = None
    ) -> None:
        """Run every instance of ``runtime.plan`` to a final state."""
        plan = runtime.plan
        work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done: queue.SimpleQueue[str] = queue.SimpleQueue()

        def worker() -> None:
            while True:
                key = work.get()
                if key is _STOP:
                    return
                try:
                    execute_node(runtime.run_id, key, runtime)
                except BaseException as exc:  # noqa: BLE001 - never lose a node
                    inst = plan.instances[key]
                    inst.state, inst.error = "failed", f"{type(exc).__name__}: {exc}"
                    runtime.record(inst)
                finally:
                    done.put(key)

        threads = [
            threading.Thread(target=worker, name=f"terrapipe-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for t in threads:
            t.start()
        inflight: set[str] = set()

        def dispatch(ready: list[Instance]) -> None:
            for inst in ready:
                inflight.add(inst.key)
                work.put(inst.key)

        restore = self._install_sigint(runtime)
        last_update = 0.0
        runtime.start_writer()
        try:
            dispatch(plan.start())
            runtime.maybe_flush(force=True)
            while inflight:
                try:
                    key = done.get(timeout=0.1)
                except queue.Empty:
                    key = None
                while key is not None:
                    inflight.discard(key)
                    dispatch(plan.on_done(key))
                    try:
                        key = done.get_nowait()
                    except queue.Empty:
                        key = None
                runtime.maybe_flush()
                if on_update is not None and time.monotonic() - last_update > 0.1:
                    last_update = time.monotonic()
                    on_update(plan)
                if runtime.cancel_event.is_set():
                    break
            if runtime.cancel_event.is_set():
                self._wind_down(runtime, inflight, done)
        finally:
            restore()
            for _ in threads:
                work.put(_STOP)
            runtime.stop_writer()
            runtime.maybe_flush(force=True)
            if on_update is not None:
                on_update(plan)

    def _wind_down(
        self, runtime: StoreRuntime, inflight: set[str], done: queue.SimpleQueue[str]
    ) -> None:
        """After a cancel: let running nodes notice for a moment, then cancel the rest."""
        deadline = time.monotonic() + self.grace
        while inflight and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                inflight.discard(done.get(timeout=0.05))
        runtime.plan.cancel_pending()
        for inst in runtime.plan.instances.values():
            if inst.state == "cancelled":
                runtime.record(inst)

    @staticmethod
    def _install_sigint(runtime: StoreRuntime) -> Callable[[], None]:
        """First Ctrl-C cancels the run cleanly; a second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if runtime.cancel_event.is_set():
                raise KeyboardInterrupt
            runtime.cancel_event.set()

        previous = signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)
