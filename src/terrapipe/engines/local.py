"""The local engine: ready node instances run in a pool of threads in this process.

The scheduler thread owns the plan; worker threads only call ``execute_node``. Ctrl-C
(SIGINT), SIGTERM or ``terrapipe runs cancel`` sets the run's cancel event: no new node
starts, running nodes see ``ctx.cancelled`` and their results are discarded, the run ends
``cancelled``. Worker threads are daemons, so a task stuck in C code cannot keep the
process alive after the run is over.

``run(job, wait=False)`` records the run as started and returns; a background thread
(not a daemon) then schedules it. The interpreter waits for that thread at exit, so a
script that returns early still finishes its runs. A process killed meanwhile (``kill -9``,
a crash) cannot record anything: the run stays ``running`` until a reader on this host sees
that its owner process is gone and marks it ``interrupted`` (``terrapipe runs resume``).
Signals are handled only when the run is scheduled on the main thread (``wait=True``).

A node whose task names a dataset ``lock`` takes it first (:class:`DatasetLocks`), as a
celery worker does, so local runs and workers never work on the same files at once.
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
from terrapipe.core.locks import lock_name
from terrapipe.core.owner import current_owner
from terrapipe.core.plan import Instance, RunPlan
from terrapipe.core.runtime import StoreRuntime
from terrapipe.core.states import NodeState
from terrapipe.engines.base import RunJob
from terrapipe.errors import InvalidInput, LockTimeout

_STOP = object()
_CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM)
LOCK_POLL_S = 0.5  # how often a node waiting for its dataset lock looks for a cancel


class DatasetLocks:
    """The dataset locks of one run's nodes (a task's ``lock`` attribute), taken through
    ``transfer/locks.py``: Redis when ``TERRAPIPE_REDIS_URL`` is set, so the lock holds
    against celery workers and other processes too, lock files otherwise. A node waits for
    its lock in its thread; a cancel while it waits ends it ``cancelled``, never run."""

    def __init__(self, runtime: StoreRuntime) -> None:
        self.runtime = runtime
        self._factory: Any = None
        self._mutex = threading.Lock()

    def _semaphore(self, name: str) -> Any:
        with self._mutex:
            if self._factory is None:
                from terrapipe.transfer.locks import LockFactory

                settings = self.runtime.store.settings
                self._factory = LockFactory(
                    redis_url=settings.redis_url, lock_dir=settings.home_dir / "locks"
                )
            return self._factory.semaphore(f"dataset:{name}", 1)

    @contextlib.contextmanager
    def hold(self, inst: Instance) -> Any:
        name = lock_name(self.runtime.plan.workflow, inst, self.runtime.params)
        if name is None:
            yield None
            return
        semaphore = self._semaphore(name)
        lease = None
        while lease is None and not self.runtime.cancel_event.is_set():
            with contextlib.suppress(LockTimeout):
                lease = semaphore.acquire(timeout=LOCK_POLL_S)
        try:
            yield lease  # cancelled while waiting: execute_node ends the node cancelled
        finally:
            if lease is not None:
                lease.release()


class LocalEngine:
    """Runs a plan with ``workers`` threads (default: the number of cores)."""

    name = "local"

    def __init__(self, workers: int | None = None, *, grace: float = 3.0) -> None:
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.grace = grace

    # -- the engine contract ---------------------------------------------------------------
    def run(self, job: RunJob, *, wait: bool = True) -> RunPlan | None:
        """Execute a recorded run here: in this thread (``wait``) or a background one."""
        store = job.store
        store.artifacts.sweep()  # debris of nodes a crash interrupted long ago
        runtime = StoreRuntime(
            store.db,
            run_id=job.run_id,
            plan=RunPlan(job.workflow),
            params=job.params,
            force=job.force,
            artifacts=store.artifacts,
            settings=store.settings,
        )
        if not job.claimed:  # a runner's claim recorded it running, under its owner
            runtime.mark_started(current_owner())
        engine = LocalEngine(job.workers or store.settings.workers, grace=self.grace)

        def go() -> RunPlan:
            try:
                try:
                    engine.execute(runtime, job.on_update)
                finally:
                    runtime.record_outcome()
            finally:
                if job.own_db:
                    store.db.dispose()
            return runtime.plan

        if wait:
            return go()
        thread = threading.Thread(target=go, name=f"terrapipe-run-{job.run_id[:12]}")
        thread.start()
        return None

    # -- scheduling ------------------------------------------------------------------------
    def execute(
        self, runtime: StoreRuntime, on_update: Callable[[RunPlan], Any] | None = None
    ) -> None:
        """Run every instance of ``runtime.plan`` to a final state."""
        plan = runtime.plan
        work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done: queue.SimpleQueue[list[str]] = queue.SimpleQueue()

        locks = DatasetLocks(runtime)

        def run_one(key: str) -> None:
            try:
                with locks.hold(plan.instances[key]):
                    execute_node(runtime.run_id, key, runtime)
            except BaseException as exc:  # noqa: BLE001 - never lose a node
                inst = plan.instances[key]
                inst.state, inst.error = NodeState.FAILED, f"{type(exc).__name__}: {exc}"
                inst.error_kind = "input" if isinstance(exc, InvalidInput) else "task"
                runtime.record(inst)

        def worker() -> None:
            while True:
                batch = work.get()
                if batch is _STOP:
                    return
                finished: list[str] = []
                try:
                    for key in batch:
                        if runtime.cancel_event.is_set() and finished:
                            break  # hand back what is done; the rest is cancelled
                        run_one(key)
                        finished.append(key)
                finally:
                    done.put(finished)
                    if len(finished) < len(batch):
                        done.put(batch[len(finished) :])

        threads: list[threading.Thread] = []  # started at the first hand-over: a chain
        inflight: set[str] = set()  # (or a one-node job) runs inline and needs none

        def dispatch(ready: list[Instance]) -> None:
            """Hand ready instances to the pool, in chunks when there are many (fan-out),
            so the threads hand over work a few hundred times, not once per node."""
            if ready and not threads:
                threads.extend(
                    threading.Thread(target=worker, name=f"terrapipe-worker-{i}", daemon=True)
                    for i in range(self.workers)
                )
                for t in threads:
                    t.start()
            size = max(1, min(64, len(ready) // (self.workers * 4)))
            for i in range(0, len(ready), size):
                chunk = [inst.key for inst in ready[i : i + size]]
                inflight.update(chunk)
                work.put(chunk)

        last_update = 0.0

        def maybe_update() -> None:
            nonlocal last_update
            if on_update is not None and time.monotonic() - last_update > 0.1:
                last_update = time.monotonic()
                on_update(plan)

        def advance(ready: list[Instance]) -> None:
            """A lone ready instance with nothing running (a chain) runs right here:
            no thread hand-over at all. Anything else goes to the pool."""
            while len(ready) == 1 and not inflight and not runtime.cancel_event.is_set():
                key = ready[0].key
                run_one(key)
                ready = plan.on_done(key)
                runtime.maybe_flush()
                maybe_update()
            dispatch(ready)

        restore = self._install_signals(runtime)
        runtime.start_writer()
        try:
            advance(plan.start())
            while inflight:
                try:
                    keys = done.get(timeout=0.1)
                except queue.Empty:
                    keys = None
                while keys is not None:
                    ready: list[Instance] = []
                    for key in keys:
                        inflight.discard(key)
                        if plan.instances[key].done:
                            ready += plan.on_done(key)
                    advance(ready)
                    try:
                        keys = done.get_nowait()
                    except queue.Empty:
                        keys = None
                runtime.maybe_flush()
                maybe_update()
                if runtime.cancel_event.is_set():
                    break
            if runtime.cancel_event.is_set():
                self._wind_down(runtime, inflight, done)
        finally:
            restore()
            for _ in threads:
                work.put(_STOP)
            runtime.stop_writer()
            # buffered, not written: the run's outcome (recorded next, by the caller) writes
            # them with the run's final state, in one transaction
            runtime.record_fresh()
            if on_update is not None:
                on_update(plan)

    def _wind_down(
        self, runtime: StoreRuntime, inflight: set[str], done: queue.SimpleQueue[list[str]]
    ) -> None:
        """After a cancel: let running nodes notice for a moment, then cancel the rest."""
        deadline = time.monotonic() + self.grace
        while inflight and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                inflight.difference_update(done.get(timeout=0.05))
        runtime.plan.cancel_pending()
        for inst in runtime.plan.instances.values():
            if inst.state == NodeState.CANCELLED:
                runtime.record(inst)

    @staticmethod
    def _install_signals(runtime: StoreRuntime) -> Callable[[], None]:
        """The first Ctrl-C or SIGTERM cancels the run cleanly (it ends ``cancelled``,
        nothing half-written); a second one interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            if runtime.cancel_event.is_set():
                raise KeyboardInterrupt
            runtime.cancel_event.set()

        previous = {sig: signal.signal(sig, handler) for sig in _CANCEL_SIGNALS}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore
