"""Submitting runs and reading them back: the one way in for the CLI, HTTP and Python.

``submit`` validates the workflow and its parameters, records the run, and hands it to
an engine. ``get_run`` and ``list_runs`` read the run store, the source of truth.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from terrapipe.core.plan import RunPlan
from terrapipe.core.values import decode_outputs, encode_outputs, outputs_for_humans
from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput, RunNotFound
from terrapipe.settings import Settings, get_settings
from terrapipe.store import runstore
from terrapipe.store.artifacts import ArtifactStore
from terrapipe.store.db import Database, open_database

ENGINES = ("local",)


@dataclass
class NodeView:
    """A node instance as recorded: state, the reason it ran or not, outputs, error."""

    key: str
    name: str
    map_index: int
    state: str
    reason: str | None
    outputs: Any
    error: str | None
    traceback: str | None
    attempts: int
    cache_key: str | None
    task_name: str
    task_version: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error_kind: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def to_dict(self, *, traceback: bool = False) -> dict[str, Any]:
        out = {
            "key": self.key,
            "name": self.name,
            "map_index": self.map_index,
            "task": self.task_name,
            "version": self.task_version,
            "state": self.state,
            "reason": self.reason,
            "outputs": outputs_for_humans(encode_outputs(self.outputs)),
            "error": self.error,
            "error_kind": self.error_kind,
            "attempts": self.attempts,
            "cache_key": self.cache_key,
            "duration": self.duration,
        }
        if traceback:
            out["traceback"] = self.traceback
        return out


@dataclass
class Run:
    """A run as recorded in the run store."""

    id: str
    workflow: str
    workflow_version: str
    state: str
    params: dict[str, Any]
    engine: str
    progress: float
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    expires_at: dt.datetime | None
    instances: list[NodeView] = field(default_factory=list)

    @property
    def nodes(self) -> dict[str, NodeView | list[NodeView]]:
        """Node name -> its instance, or the list of instances of a mapped node."""
        grouped: dict[str, list[NodeView]] = {}
        for inst in self.instances:
            grouped.setdefault(inst.name, []).append(inst)
        return {
            name: insts if any(i.map_index >= 0 for i in insts) else insts[0]
            for name, insts in grouped.items()
        }

    @property
    def ok(self) -> bool:
        return self.state == "succeeded"

    @property
    def failed_on_input(self) -> bool:
        """Failed, and every failed node failed on bad input (not a broken task)."""
        failed = [i for i in self.instances if i.state == "failed"]
        return bool(failed) and all(i.error_kind == "input" for i in failed)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for inst in self.instances:
            out[inst.state] = out.get(inst.state, 0) + 1
        return out

    def to_dict(self, *, traceback: bool = False) -> dict[str, Any]:
        nodes: dict[str, Any] = {}
        for name, value in self.nodes.items():
            if isinstance(value, list):
                nodes[name] = [v.to_dict(traceback=traceback) for v in value]
            else:
                nodes[name] = value.to_dict(traceback=traceback)
        return {
            "run_id": self.id,
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "state": self.state,
            "params": outputs_for_humans(self.params),
            "engine": self.engine,
            "progress": self.progress,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "expires_at": self.expires_at,
            "counts": self.counts(),
            "nodes": nodes,
        }


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite drops the zone
        return value.replace(tzinfo=dt.UTC)
    return value


def _run_from_rows(row: Mapping[str, Any], node_rows: Iterable[Mapping[str, Any]]) -> Run:
    instances = [
        NodeView(
            key=n["key"],
            name=n["name"],
            map_index=n["map_index"],
            state=n["state"],
            reason=n["reason"],
            outputs=decode_outputs(n["outputs"]) if n["state"] in ("succeeded", "cached") else None,
            error=n["error"],
            traceback=n["traceback"],
            attempts=n["attempts"],
            cache_key=n["cache_key"],
            task_name=n["task_name"],
            task_version=n["task_version"],
            started_at=_utc(n["started_at"]),
            finished_at=_utc(n["finished_at"]),
            error_kind=n.get("error_kind"),
        )
        for n in node_rows
    ]
    first_start: dict[str, float] = {}
    for i in instances:
        t = i.started_at.timestamp() if i.started_at else float("inf")
        first_start[i.name] = min(first_start.get(i.name, float("inf")), t)
    order = {name: pos for pos, name in enumerate(dict.fromkeys(i.name for i in instances))}
    instances.sort(key=lambda i: (first_start[i.name], order[i.name], i.map_index))
    return Run(
        id=row["id"],
        workflow=row["workflow"],
        workflow_version=row["workflow_version"],
        state=row["state"],
        params=decode_outputs(row["params"]),
        engine=row["engine"],
        progress=row["progress"],
        error=row["error"],
        created_at=_utc(row["created_at"]),
        started_at=_utc(row["started_at"]),
        finished_at=_utc(row["finished_at"]),
        expires_at=_utc(row["expires_at"]),
        instances=instances,
    )


def _run_from_plan(row: Mapping[str, Any], plan: RunPlan) -> Run:
    """The run just executed, from memory: the same data the store now holds."""
    nodes = plan.workflow.nodes
    rows = [
        {
            "key": i.key,
            "name": i.name,
            "map_index": i.map_index,
            "state": i.state,
            "reason": i.reason,
            "outputs": None,
            "error": i.error,
            "error_kind": i.error_kind,
            "traceback": i.traceback,
            "attempts": i.attempts,
            "cache_key": i.cache_key,
            "task_name": nodes[i.name].task.name,
            "task_version": str(nodes[i.name].task.version),
            "started_at": i.started_at,
            "finished_at": i.finished_at,
        }
        for i in plan.instances.values()
    ]
    run = _run_from_rows(row, rows)
    for view in run.instances:
        if view.state in ("succeeded", "cached"):
            view.outputs = plan.instances[view.key].outputs
    return run


def _with_db(db: Database | None, settings: Settings | None) -> tuple[Database, bool]:
    if db is not None:
        return db, False
    return open_database(settings or get_settings()), True


def get_run(run_id: str, *, db: Database | None = None, settings: Settings | None = None) -> Run:
    """Read a run and its node instances (a unique id prefix is accepted)."""
    database, own = _with_db(db, settings)
    try:
        row = runstore.get_run_row(database, run_id)
        if row is None:
            raise RunNotFound(f"no run with id {run_id!r} (see `terrapipe runs list`)")
        return _run_from_rows(row, runstore.node_rows(database, row["id"]))
    finally:
        if own:
            database.dispose()


def list_runs(
    *,
    limit: int = 20,
    workflow: str | None = None,
    state: str | None = None,
    db: Database | None = None,
    settings: Settings | None = None,
) -> list[Run]:
    """The newest runs first, without their nodes."""
    database, own = _with_db(db, settings)
    try:
        rows = runstore.list_run_rows(database, limit=limit, workflow=workflow, state=state)
        return [_run_from_rows(r, []) for r in rows]
    finally:
        if own:
            database.dispose()


def cancel_run(run_id: str, *, db: Database | None = None, settings: Settings | None = None) -> Run:
    """Ask a run to stop: a queued run is cancelled at once, a running one at its next
    check (within a second on the local engine)."""
    database, own = _with_db(db, settings)
    try:
        run = get_run(run_id, db=database)
        if run.state in ("queued",):
            runstore.update_run(
                database,
                run.id,
                state="cancelled",
                cancel_requested=True,
                finished_at=dt.datetime.now(dt.UTC),
            )
        elif run.state == "running":
            runstore.update_run(database, run.id, cancel_requested=True)
        else:
            raise InvalidInput(f"run {run.id} is already {run.state}; nothing to cancel")
        return get_run(run.id, db=database)
    finally:
        if own:
            database.dispose()


def submit(
    workflow: Workflow | str,
    params: Mapping[str, Any] | None = None,
    *,
    engine: str = "local",
    workers: int | None = None,
    force: bool = False,
    version: str | None = None,
    modules: Iterable[str] = (),
    settings: Settings | None = None,
    db: Database | None = None,
    on_update: Callable[[RunPlan], Any] | None = None,
) -> Run:
    """Validate, record and execute a run of ``workflow``; return the finished run.

    ``workflow`` is a :class:`Workflow` or a registered name. Unknown, missing or
    mistyped parameters raise :class:`~terrapipe.errors.ParameterError` before anything
    is recorded.
    """
    from terrapipe.core.registry import find_workflow

    if engine not in ENGINES:
        raise InvalidInput(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    wf = (
        workflow
        if isinstance(workflow, Workflow)
        else find_workflow(workflow, version, modules=modules)
    )
    wf.validate()
    resolved = wf.resolve_params(params)
    settings = settings or get_settings()
    database, own = _with_db(db, settings)
    try:
        run_id = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        runstore.create_run(
            database,
            id=run_id,
            workflow=wf.name,
            workflow_version=wf.version,
            params=encode_outputs(resolved),
            engine=engine,
            force=force,
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.run_expiry_days),
        )
        plan = _execute_local(database, run_id, wf, resolved, force, settings, workers, on_update)
        return _run_from_plan(runstore.get_run_row(database, run_id) or {}, plan)
    finally:
        if own:
            database.dispose()


def _execute_local(
    db: Database,
    run_id: str,
    wf: Workflow,
    params: dict[str, Any],
    force: bool,
    settings: Settings,
    workers: int | None,
    on_update: Callable[[RunPlan], Any] | None,
) -> RunPlan:
    from terrapipe.core.runtime import StoreRuntime
    from terrapipe.engines.local import LocalEngine

    artifacts = ArtifactStore(settings.artifacts_dir)
    artifacts.sweep()  # debris of nodes a crash interrupted long ago
    runtime = StoreRuntime(
        db,
        run_id=run_id,
        plan=RunPlan(wf),
        params=params,
        force=force,
        artifacts=artifacts,
    )
    runstore.update_run(db, run_id, state="running", started_at=dt.datetime.now(dt.UTC))
    try:
        LocalEngine(workers or settings.workers).execute(runtime, on_update)
    finally:
        plan = runtime.plan
        state = plan.final_state() if plan.finished else "cancelled"
        failed = [i.key for i in plan.instances.values() if i.state == "failed"]
        error = None
        if failed:
            shown = ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")
            error = f"{len(failed)} node(s) failed: {shown}"
        runtime.recorder.run(
            state=state,
            finished_at=dt.datetime.now(dt.UTC),
            error=error,
            progress=runtime.run_progress(),
        )
        runtime.maybe_flush(force=True)
    return runtime.plan
