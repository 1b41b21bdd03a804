"""The job runner of ``terrapipe serve``: one process that executes the service's local jobs.

The HTTP workers only record a job (``runs.submit(runner=...)``: ``queued``, owned by this
process) and answer. This process claims each such run from the store and executes it on
the local engine, up to ``jobs`` runs at once. So no job executes inside a server process,
competing with the requests for its interpreter, and a status read never waits behind one.

If this process dies, the runs it held keep it as their owner: the next look for
interrupted runs (by any reader on this host, and by a new runner when it starts) finds
the owner gone and marks them ``interrupted``, as for any local run; `terrapipe runs
resume` finishes them. It exits by itself when the ``terrapipe serve`` that started it is
gone.

    python -m terrapipe.api.runner    (started by ``terrapipe serve``; settings from the
    environment, user modules from TERRAPIPE_SERVE_MODULES, concurrency from
    TERRAPIPE_SERVE_JOBS)
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from terrapipe import runs
from terrapipe.core.owner import Owner, current_owner
from terrapipe.core.registry import WorkflowRegistry, load_registry
from terrapipe.core.states import RUN_ACTIVE, RunState
from terrapipe.core.values import decode_outputs
from terrapipe.settings import Settings, get_settings
from terrapipe.store import runstore
from terrapipe.store.db import Database, open_database

log = logging.getLogger("terrapipe.api.runner")

JOBS_ENV = "TERRAPIPE_SERVE_JOBS"
MODULES_ENV = "TERRAPIPE_SERVE_MODULES"
RUNNER_ENV = "TERRAPIPE_SERVE_RUNNER"  # how the server processes learn the runner
SCAN_EVERY = 5.0  # seconds between looks for runs whose process died


def owner_to_env(owner: Owner) -> str:
    """The runner's identity as one environment value (``host pid started``)."""
    return f"{owner.host} {owner.pid} {owner.started or ''}"


def owner_from_env(value: str | None) -> Owner | None:
    """The runner named by :func:`owner_to_env`'s value, or None when there is none."""
    if not value or not value.strip():
        return None
    host, pid, *started = value.split(" ", 2)
    return Owner(host=host, pid=int(pid), started=(started[0] if started else "") or None)


class Runner:
    """Claims the runs handed to ``owner`` (this process) and executes them, ``jobs`` at a
    time, until ``stop`` is set."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: WorkflowRegistry,
        *,
        owner: Owner,
        jobs: int = 4,
        poll: float = 0.005,
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.owner = owner
        self.jobs = max(1, jobs)
        self.poll = poll
        self.stop = threading.Event()
        self._active: set[str] = set()
        self._changed = threading.Condition()
        # a thread per job cost a tenth of a one-node job: ``jobs`` threads take turns
        self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="terrapipe-job")

    def serve(self, *, parent: int | None = None) -> None:
        """Execute handed runs until :attr:`stop` is set (or ``parent`` has exited)."""
        next_scan = 0.0
        while not self.stop.is_set():
            if parent is not None and os.getppid() != parent:
                log.warning("terrapipe serve is gone; the runner stops")
                break
            if time.monotonic() >= next_scan:
                runs.mark_interrupted_runs(self.db)
                next_scan = time.monotonic() + SCAN_EVERY
            started = self._start_some()
            with self._changed:
                if not started or len(self._active) >= self.jobs:
                    self._changed.wait(self.poll if len(self._active) < self.jobs else 1.0)

    def _start_some(self) -> int:
        with self._changed:
            free = self.jobs - len(self._active)
            busy = set(self._active)
        if free <= 0:
            return 0
        rows = runstore.queued_owned_runs(
            self.db, self.owner.host, self.owner.pid, limit=free + len(busy)
        )
        rows = [r for r in rows if r["id"] not in busy][:free]
        # runs to execute at once are claimed in one statement; one whose URL inputs are to
        # be downloaded first stays queued (dismissable) until they are in place
        claimed = runstore.claim_many(self.db, [r["id"] for r in rows if not r.get("input_urls")])
        rows = [r for r in rows if r["id"] in claimed or r.get("input_urls")]
        for row in rows:
            row["claimed"] = row["id"] in claimed
            with self._changed:
                self._active.add(row["id"])
            self._pool.submit(self._run_one, row)
        return len(rows)

    def _run_one(self, row: dict[str, Any]) -> None:
        run_id = row["id"]
        try:
            workflow = self.registry.get(row["workflow"], row["workflow_version"])
            params = decode_outputs(row["params"] or {})
            if row.get("input_urls"):  # URL inputs: downloaded here, not in the request
                from terrapipe.runs import fetch_inputs
                from terrapipe.transfer.secrets import open_urls

                urls = open_urls(row["input_urls"], self.settings.home_dir)
                if not fetch_inputs(self.db, run_id, urls, params):
                    return
            runs.run_queued(
                run_id,
                workflow,
                params,
                force=bool(row["force"]),
                db=self.db,
                settings=self.settings,
                claimed=row.get("claimed", False),
            )
        except Exception as exc:  # noqa: BLE001 - recorded on the run, the runner goes on
            log.warning("job %s could not run: %s: %s", run_id, type(exc).__name__, exc)
            self._fail(run_id, f"the job runner could not run it: {type(exc).__name__}: {exc}")
        finally:
            with self._changed:
                self._active.discard(run_id)
                self._changed.notify_all()

    def _fail(self, run_id: str, error: str) -> None:
        row = runstore.get_run_row(self.db, run_id)
        if row is not None and row["state"] in RUN_ACTIVE:
            runstore.update_run(
                self.db,
                run_id,
                state=RunState.FAILED,
                error=error,
                finished_at=runstore.utcnow(),
            )

    def close(self) -> None:
        """Let the job threads go (call once :meth:`wait_idle` says nothing runs)."""
        self._pool.shutdown(wait=True)

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the runs in hand to finish; whether they did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True


def main() -> None:
    """Entry point of the runner process (see the module docstring)."""
    logging.basicConfig(level=os.environ.get("TERRAPIPE_LOG_LEVEL", "WARNING").upper())
    modules = [m for m in os.environ.get(MODULES_ENV, "").split(os.pathsep) if m]
    jobs = int(os.environ.get(JOBS_ENV) or 4)
    parent = os.getppid()
    settings = get_settings()
    with open_database(settings) as db:
        runner = Runner(db, settings, load_registry(modules), owner=current_owner(), jobs=jobs)
        gc.collect()
        gc.freeze()  # startup's objects stay for good: keep them out of full collections

        def on_signal(signum: int, frame: Any) -> None:
            runner.stop.set()
            with runner._changed:
                runner._changed.notify_all()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        runner.serve(parent=parent)
        if not runner.wait_idle(10.0):
            log.warning("jobs still running at shutdown; they will be found interrupted")
            os._exit(0)
        runner.close()


if __name__ == "__main__":
    main()
