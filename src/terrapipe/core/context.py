"""The context a task's hooks receive: parameters, upstream outputs, item, helpers."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terrapipe.errors import Cancelled, InvalidInput

if TYPE_CHECKING:
    from terrapipe.settings import Settings
    from terrapipe.store.artifacts import ArtifactStore
    from terrapipe.store.db import Database

_TASK_LOG = logging.getLogger("terrapipe.task")


@dataclass(frozen=True)
class RunStore:
    """Where a run keeps its records and files: the database and artifact store it was
    submitted with, and the settings they came from.

    Tasks reach both through ``ctx.db``, ``ctx.artifacts`` and ``ctx.settings`` and never
    open the default database themselves, so ``submit(db=..., settings=...)`` (or a worker
    on another machine with its own settings) writes every record to the run's store.
    """

    db: Database
    artifacts: ArtifactStore
    settings: Settings


class Context:
    """What a task sees while it runs.

    ``params`` holds only the parameters the task declares (so the cache key covers exactly
    what the task reads); ``inputs`` holds upstream outputs by node name (a list for a mapped
    upstream; the item itself for the node this one maps over).
    """

    def __init__(
        self,
        *,
        run_id: str,
        node_key: str,
        node_name: str,
        params: Mapping[str, Any],
        inputs: Mapping[str, Any],
        upstream_names: frozenset[str],
        item: Any = None,
        map_index: int = -1,
        staging_root: Path,
        cancel_event: threading.Event | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        store: RunStore | None = None,
    ) -> None:
        self.run_id = run_id
        self.node_key = node_key
        self.node_name = node_name
        self.params = dict(params)
        self.inputs = dict(inputs)
        self.upstream_names = upstream_names
        self.item = item
        self.map_index = map_index
        self.workflow_name = ""
        self.cached_outputs: Any = None
        self.task_name = node_name
        self.task_version = "1"
        self.cache_hit = False
        self.cache_key: str | None = None
        self.attempt = 0
        self._staging_root = staging_root
        self._staging: Path | None = None
        self._scratch: Path | None = None
        self._cancel = cancel_event or threading.Event()
        self._on_progress = on_progress
        self._store = store
        self.log = logging.LoggerAdapter(_TASK_LOG, {"run_id": run_id, "node": node_key})

    # -- conveniences for geo workflows ------------------------------------------------
    @property
    def roi(self) -> Any:
        return self.params.get("roi")

    @property
    def time_range(self) -> tuple[Any, Any] | None:
        if "begin" in self.params or "end" in self.params:
            return self.params.get("begin"), self.params.get("end")
        return None

    # -- the run's store ----------------------------------------------------------------
    @property
    def store(self) -> RunStore:
        """The run's database, artifact store and settings (see :class:`RunStore`)."""
        if self._store is None:
            raise RuntimeError(f"node {self.node_key} has no run store (not run by an engine)")
        return self._store

    @property
    def db(self) -> Database:
        """The run's database: record layers, catalog changes, downloads here."""
        return self.store.db

    @property
    def settings(self) -> Settings:
        """The settings the run was submitted with (home, artifact root, limits ...)."""
        return self.store.settings

    @property
    def artifacts(self) -> ArtifactStore:
        return self.store.artifacts

    # -- helpers -----------------------------------------------------------------------
    def progress(self, done: float, total: float | None = None) -> None:
        """Report progress (e.g. ``ctx.progress(3, 10)``); raises Cancelled if cancelled."""
        self.check_cancelled()
        if self._on_progress is not None:
            self._on_progress(done, total if total is not None else 1)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(f"node {self.node_key} was cancelled")

    def sleep(self, seconds: float) -> None:
        """Sleep that wakes up (raising Cancelled) as soon as the run is cancelled."""
        if self._cancel.wait(seconds):
            self.check_cancelled()

    def artifact_path(self, name: str) -> Path:
        """A path to write an output file to; it becomes a stored artifact only on success."""
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise InvalidInput(f"artifact name must be a relative path inside the node: {name!r}")
        if self._staging is None:
            self._staging_root.mkdir(parents=True, exist_ok=True)
            self._staging = Path(
                tempfile.mkdtemp(prefix=f"{self.cache_key or 'node'}-", dir=self._staging_root)
            )
        path = self._staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def stored_path(self, path: Path) -> Path:
        """Where an artifact written at ``path`` will live once the node succeeds.

        For side effects that must name the final file (a layer record, a STAC item)."""
        path = Path(path)
        if self._staging is None or not path.is_relative_to(self._staging):
            return path
        return self._staging_root.parent / (self.cache_key or "") / path.relative_to(self._staging)

    @property
    def staging_dir(self) -> Path | None:
        return self._staging

    @property
    def scratch_dir(self) -> Path:
        """A private temporary folder, removed when the node finishes."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="terrapipe-scratch-"))
        return self._scratch

    def cleanup(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def discard_artifacts(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
