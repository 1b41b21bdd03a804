"""What every request handler shares: settings, the database, the workflows, the data roots.

One :class:`Service` per application, built by :func:`terrapipe.api.app.create_app` and
kept on ``app.state``; handlers get it through :func:`get_service`. Nothing module-level.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from fastapi import Request

from terrapipe.api.recorder import JobRecorder
from terrapipe.core.owner import Owner
from terrapipe.core.registry import WorkflowRegistry, load_registry
from terrapipe.core.workflow import Workflow
from terrapipe.settings import Settings
from terrapipe.store.db import Database
from terrapipe.transfer.url_inputs import MAX_DOWNLOAD


@dataclass
class Service:
    """The state of one running service."""

    settings: Settings
    db: Database
    modules: tuple[str, ...] = ()
    runner: Owner | None = None  # the process that executes local jobs (terrapipe serve's)
    _registry: WorkflowRegistry | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _next_scan: float = field(default=0.0, repr=False)
    _recorder: JobRecorder | None = field(default=None, repr=False)

    @property
    def recorder(self) -> JobRecorder:
        """Records the async jobs handed to the runner, many per commit."""
        with self._lock:
            if self._recorder is None:
                from terrapipe.runs import record_queued

                db = self.db
                self._recorder = JobRecorder(lambda rows: record_queued(db, rows))
            return self._recorder

    SCAN_EVERY = 5.0  # seconds between looks for runs whose process died

    def check_interrupted(self) -> None:
        """Mark ``interrupted`` the runs whose process is gone, at most every
        ``SCAN_EVERY`` seconds (not on every read: a status poll is one indexed query)."""
        now = time.monotonic()
        if now < self._next_scan:
            return
        self._next_scan = now + self.SCAN_EVERY
        from terrapipe.runs import mark_interrupted_runs

        mark_interrupted_runs(self.db)

    @property
    def registry(self) -> WorkflowRegistry:
        """The workflows this service offers (built-ins, entry points, ``modules``)."""
        with self._lock:
            if self._registry is None:
                self._registry = load_registry(self.modules)
            return self._registry

    def workflow(self, process_id: str) -> Workflow:
        """A process by id: ``NAME`` (newest version) or ``NAME@VERSION``."""
        name, _, version = process_id.partition("@")
        return self.registry.get(name, version or None)

    @property
    def engine(self) -> str:
        """Celery when a broker is configured, else the local engine in the background."""
        return "celery" if self.settings.broker_url else "local"

    @cached_property
    def data_roots(self) -> list[Path]:
        """Folders whose files requests may name as inputs (``TERRAPIPE_DATA_ROOTS``,
        path-separated; default the working directory and ``TERRAPIPE_HOME``), resolved
        once: the settings are fixed for the service's life, and resolving them cost half
        of an async submit."""
        raw = self.settings.data_roots or ""
        roots = [Path(p) for p in raw.split(os.pathsep) if p.strip()]
        if not roots:
            roots = [Path.cwd(), self.settings.home_dir]
        return [r.expanduser().resolve() for r in roots]

    @cached_property
    def recorded_modules(self) -> tuple[str, ...]:
        """The service's user modules as its runs record them (files made absolute, once),
        so ``terrapipe runs resume`` finds a job's workflow without ``--module``."""
        from terrapipe.runs import recorded_modules

        return tuple(recorded_modules(self.modules))

    @cached_property
    def inputs_dir(self) -> Path:
        """Where URL inputs are downloaded (``TERRAPIPE_HOME/inputs``), resolved once: every
        submit names it, and resolving the home folder is four system calls."""
        return self.settings.home_dir / "inputs"

    max_download: int = MAX_DOWNLOAD  # largest URL input fetched for a request

    def catalog_path(self, entry_id: str) -> str | None:
        """The downloaded file of catalog dataset ``entry_id``, if any."""
        from terrapipe.catalog import get_dataset
        from terrapipe.errors import NotFound

        try:
            dataset = get_dataset(self.db, entry_id)
        except NotFound:
            return None
        for uri in dataset.uris:
            if uri.local_path and Path(uri.local_path).exists():
                return uri.local_path
        return None


async def get_service(request: Request) -> Service:
    """The request's :class:`Service` (async: FastAPI calls it without a thread hop)."""
    return request.app.state.service
