"""The state of one run as an engine sees it: the instance plan in memory, writes batched
to the run store, cache look-ups served from the workflow's recent history."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terrapipe.core.context import RunStore
from terrapipe.core.flusher import Flushing, shared_flusher
from terrapipe.core.owner import Owner
from terrapipe.core.plan import Instance, RunPlan, utcnow
from terrapipe.core.states import STATE_TEXT, NodeState, RunState
from terrapipe.core.values import decode_outputs
from terrapipe.settings import Settings
from terrapipe.store import runstore
from terrapipe.store.artifacts import ArtifactStore, check_files
from terrapipe.store.db import Database
from terrapipe.store.runstore import ArtifactFile


@dataclass
class Hit:
    """A stored result: outputs, artifact folder and the files recorded in it (path, size,
    digest); ``stale`` says why the files no longer match (see :func:`check_files`)."""

    outputs: Any
    artifact_dir: str | None
    files: list[ArtifactFile] | None = None
    stale: str | None = None


def cache_rows(
    run_id: str,
    inst: Instance,
    components: dict[str, Any],
    encoded_outputs: Any,
    artifact_dir: Path | None,
    files: list[tuple[Path, int, str | None]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The cache entry of a result and the rows of its recorded files (path, size, digest),
    as every engine's runtime stores them."""
    now = utcnow()
    key = inst.cache_key or ""
    entry = {
        "key": key,
        "task_name": components["task"],
        "task_version": components["version"],
        "components": components,
        "outputs": encoded_outputs,
        "artifact_dir": str(artifact_dir) if artifact_dir else None,
        "run_id": run_id,
        "created_at": now,
    }
    rows = [
        {"cache_key": key, "path": str(p), "size": size, "digest": d, "created_at": now}
        for p, size, d in files
    ]
    return entry, rows


class StoreRuntime:
    """Implements :class:`terrapipe.core.execute.Runtime` over a :class:`Database`."""

    flush_interval = 0.25
    key_snapshot_limit = 200_000

    def __init__(
        self,
        db: Database,
        *,
        run_id: str,
        plan: RunPlan,
        params: dict[str, Any],
        force: bool,
        artifacts: ArtifactStore,
        settings: Settings,
    ) -> None:
        self.db = db
        self.store = RunStore(db=db, artifacts=artifacts, settings=settings)
        self.run_id = run_id
        self.plan = plan
        self.params = params
        self.force = force
        self.artifacts = artifacts
        self.cancel_event = threading.Event()
        self.recorder = runstore.RunRecorder(db, run_id)
        self._hits: dict[str, Hit] = {}
        self._previous: dict[tuple[str, str | None], str] = {}
        self._last_flush = time.monotonic()
        self._progress: dict[str, float] = {}
        self._writer: Flushing | None = None  # registered with the process's flusher
        # A snapshot of the keys that exist lets a miss skip the database; a result another
        # process stores meanwhile is at worst computed twice (results are keyed).
        task_names = sorted({n.task.name for n in plan.workflow.nodes.values()})
        self._known_keys = runstore.cache_keys(db, task_names, limit=self.key_snapshot_limit)
        rows = runstore.history(db, plan.workflow.name)
        # the recorded files of those results, in one query, only if any result has files
        has_files = any(row["artifact_dir"] for row in rows)
        files = runstore.history_files(db, plan.workflow.name) if has_files else {}
        for row in rows:
            key = row["cache_key"]
            self._hits[key] = Hit(
                decode_outputs(row["outputs"]), row["artifact_dir"], files.get(key, [])
            )
            self._previous[(row["name"], row["item_id"])] = key

    # -- Runtime protocol ------------------------------------------------------------------
    def lookup_cache(self, key: str) -> Hit | None:
        hit = self._hits.get(key)
        if hit is None:
            if self._known_keys is not None and key not in self._known_keys:
                return None
            row = runstore.cache_row(self.db, key)
            if row is None:
                return None
            hit = Hit(decode_outputs(row["outputs"]), row["artifact_dir"], row["files"])
        if hit.artifact_dir:
            # one stat per recorded file (a hash too for content tasks): a deleted, truncated
            # or rewritten artifact is not served; the node reruns naming the file
            stale = check_files(hit.artifact_dir, hit.files)
            if stale:
                return Hit(hit.outputs, hit.artifact_dir, hit.files, stale=stale)
        return hit

    def previous_components(self, name: str, item_id: str | None) -> dict[str, Any] | None:
        key = self._previous.get((name, item_id))
        return runstore.components_of(self.db, key) if key else None

    def save_result(
        self,
        inst: Instance,
        components: dict[str, Any],
        encoded_outputs: Any,
        artifact_dir: Path | None,
        files: list[tuple[Path, int, str | None]],
    ) -> None:
        entry, file_rows = cache_rows(
            self.run_id, inst, components, encoded_outputs, artifact_dir, files
        )
        self.recorder.cache_entry(entry, file_rows)
        key = entry["key"]
        self._hits[key] = Hit(
            inst.outputs,
            str(artifact_dir) if artifact_dir else None,
            [(str(p), size, d) for p, size, d in files],
        )

    def record(self, inst: Instance) -> None:
        node = self.plan.workflow.nodes[inst.name]
        self.recorder.node(
            {
                "key": inst.key,
                "name": inst.name,
                "map_index": inst.map_index,
                "item_id": inst.item_id,
                "task_name": node.task.name,
                "task_version": str(node.task.version),
                "state": STATE_TEXT[inst.state],
                "reason": inst.reason,
                "cache_key": inst.cache_key,
                "attempts": inst.attempts,
                "error": inst.error,
                "error_kind": inst.error_kind,
                "traceback": inst.traceback,
                "started_at": inst.started_at,
                "finished_at": inst.finished_at,
            }
        )

    def progress(self, inst: Instance, done: float, total: float) -> None:
        if total:
            self._progress[inst.key] = max(0.0, min(1.0, float(done) / float(total)))

    # -- engine helpers --------------------------------------------------------------------
    def mark_started(self, owner: Owner | None) -> None:
        """Record the run as ``running``, owned by ``owner`` (the executing process) so a
        reader can tell when that process died without finishing it."""
        values: dict[str, Any] = {"state": RunState.RUNNING, "started_at": utcnow()}
        if owner is not None:
            values.update(owner_host=owner.host, owner_pid=owner.pid, owner_started=owner.started)
        runstore.update_run(self.db, self.run_id, **values)

    def record_outcome(self) -> RunState:
        """Record the run's final state from its plan (``cancelled`` if it stopped early),
        with a one-line error naming the failed nodes; flush everything."""
        plan = self.plan
        state = plan.final_state() if plan.finished else RunState.CANCELLED
        failed = [i.key for i in plan.instances.values() if i.state == NodeState.FAILED]
        error = None
        if failed:
            shown = ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
            error = f"{len(failed)} node(s) failed: {shown}"
        self.record_fresh()
        self.recorder.run(
            state=state, finished_at=utcnow(), error=error, progress=self.run_progress()
        )
        self.recorder.flush()  # no look for a cancel: the run is over
        self._last_flush = time.monotonic()
        return state

    def record_fresh(self) -> None:
        """Record instances the plan created since the last call (as pending or final)."""
        fresh, self.plan.fresh = self.plan.fresh, []
        for inst in fresh:
            self.record(inst)

    def run_progress(self) -> float:
        total = len(self.plan.instances) or 1
        partial = sum(v for k, v in self._progress.items() if not self.plan.instances[k].done)
        return min(1.0, (self.plan.n_done + partial) / total)

    def flush(self) -> None:
        """Record what the plan changed and write everything buffered; poll for cancel."""
        self.record_fresh()
        self.recorder.run(progress=self.run_progress())
        self.recorder.flush()
        if not self.cancel_event.is_set() and runstore.cancel_requested(self.db, self.run_id):
            self.cancel_event.set()

    def maybe_flush(self, *, force: bool = False) -> None:
        """Called by the scheduler: hand new instances to the recorder; flush when due
        (or always with ``force``) unless the background writer does it."""
        self.record_fresh()
        if force or (self._writer is None and time.monotonic() - self._last_flush >= 0.25):
            self._last_flush = time.monotonic()
            self.flush()

    def start_writer(self) -> None:
        """Flush every ``flush_interval`` from the process's background flusher (one
        thread for every run), so the scheduler never waits for the database and a long
        node still sees a cancel."""
        if self._writer is None:
            self._writer = shared_flusher(self.flush_interval).add(self._background_flush)

    def _background_flush(self) -> None:
        self.recorder.run(progress=self.run_progress())
        self.recorder.flush()
        if runstore.cancel_requested(self.db, self.run_id):
            self.cancel_event.set()

    def stop_writer(self) -> None:
        """No more background flushes of this run (one in progress is waited for)."""
        if self._writer is not None:
            shared_flusher(self.flush_interval).remove(self._writer)
            self._writer = None
