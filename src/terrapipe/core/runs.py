"""Runs and node instances as recorded: the views ``terrapipe.runs`` returns.

Submitting, reading, cancelling and resuming live in :mod:`terrapipe.runs`, above core and
the engines; this module only turns store rows (or the in-memory plan of a run that just
finished here) into :class:`Run` and :class:`NodeView`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from terrapipe.core.plan import RunPlan
from terrapipe.core.states import (
    NODE_FINAL,
    NODE_OK,
    NODE_STATE_OF,
    STATE_TEXT,
    NodeState,
    RunState,
    run_state,
)
from terrapipe.core.values import decode_outputs, encode_outputs, outputs_for_humans


@dataclass
class NodeView:
    """A node instance as recorded: state, the reason it ran or not, outputs, error."""

    key: str
    name: str
    map_index: int
    state: NodeState
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
    worker: str | None = None  # host:pid of the process that ran it (distributed engines)

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
            "worker": self.worker,
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
    state: RunState
    params: dict[str, Any]
    engine: str
    progress: float
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    expires_at: dt.datetime | None
    instances: list[NodeView] = field(default_factory=list)
    error_kind: str | None = None  # "input": failed on its input before any node ran

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
        return self.state == RunState.SUCCEEDED

    @property
    def failed_on_input(self) -> bool:
        """Failed, and every failed node failed on bad input (not a broken task), or the run
        failed on its input before any node ran (a URL input that could not be fetched)."""
        if self.error_kind == "input" and self.state == RunState.FAILED:
            return True
        failed = [i for i in self.instances if i.state == NodeState.FAILED]
        return bool(failed) and all(i.error_kind == "input" for i in failed)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for inst in self.instances:
            out[inst.state] = out.get(inst.state, 0) + 1
        return {STATE_TEXT[k]: v for k, v in out.items()}  # plain keys: any JSON encoder

    @property
    def finished(self) -> bool:
        """Whether every node instance is final (a run followed with ``wait=False``)."""
        return bool(self.instances) and all(i.state in NODE_FINAL for i in self.instances)

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


def run_from_rows(row: Mapping[str, Any], node_rows: Iterable[Mapping[str, Any]]) -> Run:
    instances = [
        NodeView(
            key=n["key"],
            name=n["name"],
            map_index=n["map_index"],
            state=NODE_STATE_OF[n["state"]],
            reason=n["reason"],
            outputs=decode_outputs(n["outputs"]) if n["state"] in NODE_OK else None,
            error=n["error"],
            traceback=n["traceback"],
            attempts=n["attempts"],
            cache_key=n["cache_key"],
            task_name=n["task_name"],
            task_version=n["task_version"],
            started_at=n["started_at"],
            finished_at=n["finished_at"],
            error_kind=n.get("error_kind"),
            worker=n.get("worker"),
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
        state=run_state(row["state"]),
        params=decode_outputs(row["params"]),
        engine=row["engine"],
        progress=row["progress"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
        instances=instances,
        error_kind=row.get("error_kind"),
    )


def run_from_plan(row: Mapping[str, Any], plan: RunPlan) -> Run:
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
    run = run_from_rows(row, rows)
    for view in run.instances:
        if view.state in NODE_OK:
            view.outputs = plan.instances[view.key].outputs
    return run
