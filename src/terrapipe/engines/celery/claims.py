"""The plan rules applied inside a database transaction: the Celery engine's scheduler.

The database decides what runs. Every decision (which instances exist, which are ready,
what a finished node unblocks, how a mapped node expands) comes from
:mod:`terrapipe.core.rules`, applied to a :class:`DbView` over the run's node rows read in
the same transaction that records a finished node. A ready node is *claimed* with a
conditional ``UPDATE ... SET state='queued' WHERE state='pending'`` (counting rows): only
the transaction that moved it enqueues it, after commit, so each node is enqueued once.

Transactions that finish nodes of one run take the run row's lock first (``SELECT ...
FOR UPDATE``): they are serialized per run, so the last of two siblings to finish always
sees the other one final and unblocks their successor. Runs do not wait on each other.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg.rows import namedtuple_row

from terrapipe.core import rules
from terrapipe.core.states import NODE_FINAL, NODE_OK, STATE_TEXT, NodeState, RunState
from terrapipe.core.values import decode_outputs, encode_outputs
from terrapipe.core.workflow import Workflow
from terrapipe.store import runstore
from terrapipe.store.db import Database

nodes_t = runstore.nodes_t
runs_t = runstore.runs_t
cache_t = runstore.cache_t
artifacts_t = runstore.artifacts_t

OPEN = (NodeState.PENDING.value, NodeState.QUEUED.value, NodeState.RUNNING.value)
FINAL = tuple(sorted(s.value for s in NODE_FINAL))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def transaction(conn: sa.Connection, *, single: bool = False) -> Iterator[None]:
    """One transaction on ``conn``: SQLAlchemy's own on a normal connection; explicit
    BEGIN/COMMIT on an AUTOCOMMIT one (a worker's message connection, where single reads
    and updates then cost one round trip each instead of three). ``single``: the block is
    one statement, atomic by itself under autocommit."""
    autocommit = _is_autocommit(conn)
    if autocommit and single:
        yield
        return
    if not autocommit:
        if conn.in_transaction():
            yield
            return
        with conn.begin():
            yield
        return
    conn.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        conn.exec_driver_sql("ROLLBACK")
        raise
    conn.exec_driver_sql("COMMIT")


def _is_autocommit(conn: sa.Connection) -> bool:
    return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


@dataclass
class NodeRow:
    """One stored node instance as the rules read it."""

    key: str
    name: str
    map_index: int
    state: str
    outputs: Any = None
    cache_key: str | None = None
    item_id: str | None = None
    item: Any = None
    item_key: Any = None


_ROW_COLUMNS = (
    nodes_t.c.key,
    nodes_t.c.name,
    nodes_t.c.map_index,
    nodes_t.c.state,
    nodes_t.c.cache_key,
    nodes_t.c.item_id,
    cache_t.c.outputs,
)


def _row(r: Any) -> NodeRow:
    outputs = decode_outputs(r.outputs) if r.state in NODE_OK and r.outputs is not None else None
    return NodeRow(r.key, r.name, r.map_index, r.state, outputs, r.cache_key, r.item_id)


class DbView:
    """A :class:`~terrapipe.core.rules.StateView` over one run's rows, read through ``conn``
    (inside the caller's transaction). Rows of a node are read once and kept up to date by
    the changes made through this view."""

    def __init__(self, conn: sa.Connection, run_id: str, workflow: Workflow) -> None:
        self.conn = conn
        self.run_id = run_id
        self.workflow = workflow
        self._nodes: dict[str, dict[str, NodeRow]] = {}  # name -> key -> row (loaded names)
        self._single: dict[str, NodeRow | None] = {}

    def _select(self) -> sa.Select:
        return (
            sa.select(*_ROW_COLUMNS)
            .select_from(nodes_t.outerjoin(cache_t, cache_t.c.key == nodes_t.c.cache_key))
            .where(nodes_t.c.run_id == self.run_id)
        )

    def _load(self, name: str) -> dict[str, NodeRow]:
        rows = self._nodes.get(name)
        if rows is None:
            query = self._select().where(nodes_t.c.name == name).order_by(nodes_t.c.map_index)
            rows = {r.key: _row(r) for r in self.conn.execute(query)}
            for key, known in self._single.items():  # rows this view already holds win
                if known is not None and key in rows:
                    rows[key] = known
            self._nodes[name] = rows
        return rows

    # -- StateView -------------------------------------------------------------------
    def is_expanded(self, name: str) -> bool:
        if self.workflow.nodes[name].map_over is None:
            return True
        if name in self._nodes:
            return bool(self._nodes[name])
        query = sa.select(nodes_t.c.id).where(
            nodes_t.c.run_id == self.run_id, nodes_t.c.name == name
        )
        return self.conn.execute(query.limit(1)).first() is not None

    def node_complete(self, name: str) -> bool:
        if not self.is_expanded(name):
            return False
        if name in self._nodes:
            return all(r.state in NODE_FINAL for r in self._nodes[name].values())
        query = sa.select(nodes_t.c.id).where(
            nodes_t.c.run_id == self.run_id, nodes_t.c.state.in_(OPEN), nodes_t.c.name == name
        )
        return self.conn.execute(query.limit(1)).first() is None

    def node_instances(self, name: str) -> list[NodeRow]:
        return sorted(self._load(name).values(), key=lambda r: r.map_index)

    def instance(self, key: str) -> NodeRow | None:
        name = key.split("[", 1)[0] if key.endswith("]") else key
        if name in self._nodes:
            return self._nodes[name].get(key)
        if key not in self._single:
            r = self.conn.execute(self._select().where(nodes_t.c.key == key)).first()
            self._single[key] = _row(r) if r is not None else None
        return self._single[key]

    # -- changes ---------------------------------------------------------------------
    def _forget(self, name: str) -> None:
        self._nodes.pop(name, None)
        for key in [k for k in self._single if k == name or k.startswith(f"{name}[")]:
            del self._single[key]

    def insert(self, rows: list[dict[str, Any]]) -> None:
        """Add node rows (task, version and run filled in here)."""
        if not rows:
            return
        nodes = self.workflow.nodes
        for row in rows:
            task = nodes[row["name"]].task
            row.setdefault("map_index", -1)
            row.setdefault("state", NodeState.PENDING.value)
            row.update(run_id=self.run_id, task_name=task.name, task_version=str(task.version))
        cols = sorted({c for row in rows for c in row})
        self.conn.execute(nodes_t.insert(), [{c: row.get(c) for c in cols} for row in rows])
        for name in {row["name"] for row in rows}:
            self._forget(name)

    def set_final(self, key: str, state: str, reason: str) -> None:
        self.conn.execute(
            nodes_t.update()
            .where(nodes_t.c.run_id == self.run_id, nodes_t.c.key == key)
            .values(state=STATE_TEXT[state], reason=reason, finished_at=utcnow())
        )
        inst = self.instance(key)
        if inst is not None:
            inst.state = STATE_TEXT[state]

    def claim(self, keys: list[str]) -> list[str]:
        """Move pending rows to queued; the keys this statement moved (and only those)."""
        if not keys:
            return []
        result = self.conn.execute(
            nodes_t.update()
            .where(
                nodes_t.c.run_id == self.run_id,
                nodes_t.c.key.in_(keys),
                nodes_t.c.state == NodeState.PENDING.value,
            )
            .values(state=NodeState.QUEUED.value, queued_at=utcnow())
            .returning(nodes_t.c.key)
        )
        moved = [r.key for r in result]
        for key in moved:
            inst = self.instance(key)
            if inst is not None:
                inst.state = NodeState.QUEUED.value
        return moved


# -- the rules, applied ------------------------------------------------------------------
def _unblocked(view: DbView, down: dict[str, list[str]], inst: NodeRow) -> list[tuple]:
    downstream = down[inst.name]
    if not downstream:
        return []
    return rules.unblocked(view.workflow, downstream, inst, view.node_complete(inst.name))


def advance(view: DbView, seeds: list[tuple[str, int | None]]) -> list[str]:
    """Expand, fail (``upstream_failed``) and claim what ``seeds`` unblock, as
    :meth:`RunPlan._advance` does in memory; the keys claimed by this transaction."""
    workflow = view.workflow
    down = workflow.downstream()
    ready: list[str] = []
    queue = deque(seeds)
    while queue:
        name, index = queue.popleft()
        if not view.is_expanded(name):
            expansion = rules.expand(workflow, name, view)
            if expansion is None:
                continue
            if isinstance(expansion, rules.Placeholder):
                view.insert(
                    [
                        {
                            "key": expansion.key,
                            "name": name,
                            "state": STATE_TEXT[expansion.state],
                            "reason": expansion.reason,
                            "error": expansion.error,
                            "finished_at": utcnow(),
                        }
                    ]
                )
                placeholder = view.instance(expansion.key)
                assert placeholder is not None
                queue.extend(_unblocked(view, down, placeholder))
                continue
            view.insert(
                [
                    {
                        "key": new.key,
                        "name": name,
                        "map_index": new.map_index,
                        "item_id": new.item_id,
                        "item": encode_outputs(new.item) if new.item is not None else None,
                    }
                    for new in expansion
                ]
            )
            index = None
        if index is not None:
            keys = [rules.instance_key(name, index)]
        else:
            keys = [r.key for r in view.node_instances(name)]
        for key in keys:
            inst = view.instance(key)
            if inst is None or inst.state != NodeState.PENDING or key in ready:
                continue
            verdict = rules.readiness(workflow, inst, view)
            if verdict == "ready":
                ready.append(key)
            elif verdict == "upstream_failed":
                view.set_final(key, NodeState.UPSTREAM_FAILED, "upstream failed")
                queue.extend(_unblocked(view, down, inst))
    return view.claim(ready)


def _lock_run(conn: sa.Connection, run_id: str) -> Any:
    query = sa.select(runs_t.c.state, runs_t.c.cancel_requested).where(runs_t.c.id == run_id)
    return conn.execute(query.with_for_update()).first()


def start_run(db: Database, workflow: Workflow, run_id: str) -> tuple[list[str], dt.datetime]:
    """Record the run as running (owned by no process: workers anywhere execute it), insert
    its initial node rows and claim the ready ones; the claimed keys and the run's start
    (its message generation)."""
    now = utcnow()
    with db.begin() as conn:
        _lock_run(conn, run_id)
        conn.execute(
            runs_t.update()
            .where(runs_t.c.id == run_id)
            .values(
                state=RunState.RUNNING.value,
                started_at=now,
                owner_host=None,
                owner_pid=None,
                owner_started=None,
            )
        )
        view = DbView(conn, run_id, workflow)
        order = workflow.topological_order()
        view.insert([{"key": n.key, "name": n.name} for n in rules.initial_instances(workflow)])
        claimed = advance(view, [(name, None) for name in order])
        if not claimed:  # a run whose every node ended at once (all upstream_failed ...)
            _maybe_finish_run(conn, view)
    return claimed, now


def _cancel_open(conn: sa.Connection, view: DbView) -> None:
    """A cancelled run: pending and queued nodes (and nodes never expanded) end cancelled;
    running ones see ``ctx.cancelled`` through their lease renewal and end by themselves."""
    now = utcnow()
    conn.execute(
        nodes_t.update()
        .where(
            nodes_t.c.run_id == view.run_id,
            nodes_t.c.state.in_((NodeState.PENDING.value, NodeState.QUEUED.value)),
        )
        .values(state=NodeState.CANCELLED.value, reason="run cancelled", finished_at=now)
    )
    names = {r[0] for r in conn.execute(_names_query(view.run_id))}
    missing = [n for n in view.workflow.nodes if n not in names]
    view.insert(
        [
            {"key": n, "name": n, "state": "cancelled", "reason": "run cancelled"}
            | {"finished_at": now}
            for n in missing
        ]
    )


def _names_query(run_id: str) -> sa.Select:
    return sa.select(nodes_t.c.name).where(nodes_t.c.run_id == run_id).distinct()


def _maybe_finish_run(conn: sa.Connection, view: DbView) -> RunState | None:
    """If every node of the run is expanded and final, record the run's outcome."""
    run_id = view.run_id
    open_row = conn.execute(
        sa.select(nodes_t.c.id)
        .where(nodes_t.c.run_id == run_id, nodes_t.c.state.in_(OPEN))
        .limit(1)
    ).first()
    if open_row is not None:
        return None
    names = {r[0] for r in conn.execute(_names_query(run_id))}
    if len(names) < len(view.workflow.nodes):
        return None
    states = [
        r[0]
        for r in conn.execute(
            sa.select(nodes_t.c.state).where(nodes_t.c.run_id == run_id).distinct()
        )
    ]
    outcome = rules.run_outcome(states)
    failed = conn.execute(
        sa.select(nodes_t.c.key)
        .where(nodes_t.c.run_id == run_id, nodes_t.c.state == NodeState.FAILED.value)
        .order_by(nodes_t.c.id)
    ).all()
    error = None
    if failed:
        shown = ", ".join(r[0] for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
        error = f"{len(failed)} node(s) failed: {shown}"
    conn.execute(
        runs_t.update()
        .where(runs_t.c.id == run_id, runs_t.c.state == RunState.RUNNING.value)
        .values(state=outcome.value, finished_at=utcnow(), error=error, progress=1.0)
    )
    return outcome


# -- one node's life on a worker ---------------------------------------------------------
# The statements a worker runs for every node, as driver SQL: building and compiling a
# Core statement per call cost more than its round trip (a profile of 2,000 no-op nodes)
# (Single rows are found by their id, the id by the unique (run_id, key) index: a
# condition on the state next to run_id would let the planner pick the open-nodes index
# instead and read the whole run for one row, as it did on a table without statistics.)
_START_SQL = (
    "UPDATE nodes SET state = 'running', worker = %(p_worker)s, lease_until = %(p_lease)s, "
    "started_at = %(p_now)s "
    "WHERE id = (SELECT id FROM nodes WHERE run_id = %(p_run)s AND key = %(p_key)s) "
    "AND (state = 'queued' OR (state = 'running' AND lease_until < %(p_now)s)) "
    "RETURNING id, key, name, map_index, item, item_id, attempts, "
    "(SELECT cancel_requested FROM runs WHERE id = %(p_run)s) AS cancel_requested, "
    "(SELECT started_at FROM runs WHERE id = %(p_run)s) AS run_started"
)
_STILL_OPEN_SQL = (
    "SELECT 1 FROM nodes WHERE run_id = %(p_run)s AND state IN "
    f"({', '.join(repr(s) for s in OPEN)}) LIMIT 1"
)


def driver_query(conn: sa.Connection, sql: str, params: dict[str, Any], *, named: bool = False):
    """Run ``sql`` on the connection's psycopg connection directly; the cursor (rows as
    named tuples when ``named``), valid until the next call on this connection. For the
    few statements a worker runs per node: going through SQLAlchemy's result machinery
    cost about as much as the statement itself.
    Errors are psycopg's own; a worker drops its connection on any error."""
    driver = conn.connection.driver_connection
    assert driver is not None
    cursors = getattr(driver, "_terrapipe_cursors", None)
    if cursors is None:  # one plain and one named cursor per connection, reused
        cursors = (driver.cursor(), driver.cursor(row_factory=namedtuple_row))
        driver._terrapipe_cursors = cursors
    cursor = cursors[1] if named else cursors[0]
    cursor.execute(sql, params)
    return cursor


def start_node(conn: sa.Connection, run_id: str, key: str, worker: str, lease_s: float) -> Any:
    """Move a queued node (or a running one whose lease expired) to running on ``worker``
    (committed); the row with the run's ``cancel_requested``, or None when the node is final
    or live elsewhere (a message delivered twice)."""
    now = utcnow()
    params = {
        "p_run": run_id,
        "p_key": key,
        "p_now": now,
        "p_worker": worker,
        "p_lease": now + dt.timedelta(seconds=lease_s),
    }
    with transaction(conn, single=True):
        return driver_query(conn, _START_SQL, params, named=True).fetchone()


def renew_leases(
    db: Database, held: list[tuple[str, str]], worker: str, lease_s: float
) -> tuple[set[tuple[str, str]], set[str]]:
    """Extend the leases of the nodes ``(run id, key)`` this worker runs: (those still
    ours, the run ids whose cancel was requested)."""
    runs = sorted({r for r, _ in held})
    with db.begin() as conn:
        ours = conn.execute(
            nodes_t.update()
            .where(
                sa.tuple_(nodes_t.c.run_id, nodes_t.c.key).in_(held),
                nodes_t.c.state == NodeState.RUNNING.value,
                nodes_t.c.worker == worker,
            )
            .values(lease_until=utcnow() + dt.timedelta(seconds=lease_s))
            .returning(nodes_t.c.run_id, nodes_t.c.key)
        ).all()
        cancelled = conn.execute(
            sa.select(runs_t.c.id).where(runs_t.c.id.in_(runs), runs_t.c.cancel_requested)
        ).all()
    return {(r[0], r[1]) for r in ours}, {r[0] for r in cancelled}


@dataclass
class Outcome:
    """What a worker learned executing one node, recorded by :func:`finish_node`."""

    node_id: int  # the row's id (as start_node returned it)
    key: str
    name: str
    map_index: int
    state: str
    reason: str | None
    cache_key: str | None
    attempts: int
    error: str | None
    error_kind: str | None
    traceback: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    outputs: Any = None  # as the task returned them (what the rules read, as in memory)
    item_id: str | None = None
    cache_entry: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None


_OUTCOME_COLUMNS = (
    "state",
    "reason",
    "cache_key",
    "attempts",
    "error",
    "error_kind",
    "traceback",
    "started_at",
    "finished_at",
)


def _outcome_values(outcome: Outcome) -> dict[str, Any]:
    return {
        "state": STATE_TEXT[outcome.state],
        "reason": outcome.reason,
        "cache_key": outcome.cache_key,
        "attempts": outcome.attempts,
        "error": outcome.error,
        "error_kind": outcome.error_kind,
        "traceback": outcome.traceback,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
    }


@functools.lru_cache(maxsize=4)
def _record_sql(cache_columns: tuple[str, ...]) -> str:
    """One statement recording a node held by this worker and, when ``cache_columns``,
    upserting its cache entry in a CTE: atomic on its own, one round trip, one commit.
    Its row count is the node's (1: recorded; 0: the node is no longer ours)."""
    sets = ", ".join(f'"{c}" = %({c})s' for c in _OUTCOME_COLUMNS)
    update = (
        f"UPDATE nodes SET {sets}, lease_until = NULL "
        "WHERE id = %(p_id)s AND state = 'running' AND worker = %(p_worker)s"
    )
    if not cache_columns:
        return update
    names = ", ".join(f'"{c}"' for c in cache_columns)
    marks = ", ".join(f"%(c_{c})s" for c in cache_columns)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in cache_columns if c != "key")
    insert = (
        f"INSERT INTO cache_entries ({names}) VALUES ({marks}) "
        f"ON CONFLICT (key) DO UPDATE SET {updates}"
    )
    return f"WITH cached AS ({insert}) {update}"


def _record_one(conn: sa.Connection, run_id: str, outcome: Outcome, worker: str) -> bool:
    """:func:`_record` for a node without recorded files, in one statement."""
    params = _outcome_values(outcome)
    params["p_id"], params["p_worker"] = outcome.node_id, worker
    entry = outcome.cache_entry or {}
    columns = tuple(c.name for c in cache_t.columns if c.name in entry)
    for c in columns:
        value = entry[c]
        params[f"c_{c}"] = runstore.json_param(value) if c in _CACHE_JSON else value
    return driver_query(conn, _record_sql(columns), params).rowcount == 1


_CACHE_JSON = frozenset(c.name for c in cache_t.columns if isinstance(c.type, sa.JSON))


def _record(db: Database, conn: sa.Connection, run_id: str, outcome: Outcome, worker: str) -> bool:
    """Write the node's outcome and cache entry (inside the caller's transaction) if this
    worker still holds the node; whether it did."""
    entry = outcome.cache_entry
    if not outcome.files and not (entry and entry.get("artifact_dir")):
        return _record_one(conn, run_id, outcome, worker)
    if entry is not None:
        runstore.bulk_upsert(db, conn, cache_t, [entry], ("key",))
        conn.execute(artifacts_t.delete().where(artifacts_t.c.cache_key == outcome.cache_key))
        if outcome.files:
            conn.execute(artifacts_t.insert(), outcome.files)
    recorded = conn.execute(
        nodes_t.update()
        .where(
            nodes_t.c.id == outcome.node_id,
            nodes_t.c.state == NodeState.RUNNING.value,
            nodes_t.c.worker == worker,
        )
        .values(**_outcome_values(outcome), lease_until=None)
    ).rowcount
    return recorded == 1


def finish_node(
    db: Database,
    conn: sa.Connection,
    workflow: Workflow,
    run_id: str,
    outcome: Outcome,
    worker: str,
    *,
    cancelled: bool = False,
) -> list[str] | None:
    """In ONE transaction on ``conn``: record the node (if this worker still holds it), its
    cache entry, expand and claim what it unblocks, end the run if it was the last; the
    claimed keys (``None`` if the node was no longer ours: the sweeper moved it).

    A node with no downstream node unblocks nothing: it is recorded without the run lock
    (leaves of a fan-out finish in parallel), and whether the run is over is asked after
    that commit, so of two last leaves finishing at once the later one always sees both
    final (ending the run is conditional, so both may try). ``cancelled``: the worker
    knows the run's cancel was requested (the locked path then cancels what is open).
    """
    if not cancelled and not workflow.downstream()[outcome.name]:
        one = not outcome.files and not (outcome.cache_entry or {}).get("artifact_dir")
        with transaction(conn, single=one):
            if not _record(db, conn, run_id, outcome, worker):
                return None
        still_open = driver_query(conn, _STILL_OPEN_SQL, {"p_run": run_id}).fetchone()
        if still_open is None:
            with transaction(conn):
                run = _lock_run(conn, run_id)
                view = DbView(conn, run_id, workflow)
                if run is not None and run.cancel_requested:
                    _cancel_open(conn, view)
                _maybe_finish_run(conn, view)
        return []
    with transaction(conn):
        run = _lock_run(conn, run_id)
        if not _record(db, conn, run_id, outcome, worker):
            return None
        view = DbView(conn, run_id, workflow)
        claimed: list[str] = []
        if run is not None and run.cancel_requested:
            _cancel_open(conn, view)
        else:
            state = STATE_TEXT[outcome.state]
            ok = state in NODE_OK
            inst = NodeRow(
                outcome.key,
                outcome.name,
                outcome.map_index,
                state,
                outcome.outputs if ok else None,
                outcome.cache_key,
                outcome.item_id,
            )
            view._single[outcome.key] = inst
            claimed = advance(view, _unblocked(view, workflow.downstream(), inst))
        if not claimed:  # something claimed is still open: the run cannot be over
            _maybe_finish_run(conn, view)
    return claimed


def requeue(
    db: Database, run_id: str, key: str, worker: str, attempts: int, error: str | None
) -> bool:
    """Put a node this worker holds back to ``queued`` (a retry later, a busy lock)."""
    with db.begin() as conn:
        return (
            conn.execute(
                nodes_t.update()
                .where(
                    nodes_t.c.run_id == run_id,
                    nodes_t.c.key == key,
                    nodes_t.c.state == NodeState.RUNNING.value,
                    nodes_t.c.worker == worker,
                )
                .values(
                    state=NodeState.QUEUED.value,
                    attempts=attempts,
                    error=error,
                    lease_until=None,
                    queued_at=utcnow(),
                )
            ).rowcount
            == 1
        )


def fail_run(db: Database, run_id: str, error: str) -> None:
    """End a run ``failed`` with ``error``: every unfinished node fails with it (a broker
    that cannot be reached, a workflow this worker does not know)."""
    now = utcnow()
    with db.begin() as conn:
        _lock_run(conn, run_id)
        conn.execute(
            nodes_t.update()
            .where(nodes_t.c.run_id == run_id, nodes_t.c.state.in_(OPEN))
            .values(
                state=NodeState.FAILED.value,
                reason="not executed",
                error=error,
                error_kind="task",
                finished_at=now,
                lease_until=None,
            )
        )
        conn.execute(
            runs_t.update()
            .where(runs_t.c.id == run_id, runs_t.c.state.in_(("queued", "running")))
            .values(state=RunState.FAILED.value, finished_at=now, error=error)
        )


def expired_leases(db: Database, limit: int = 500) -> list[tuple[str, str, str]]:
    """Running nodes whose lease ended (their worker died): back to ``queued``; their
    (run id, key, name) for the sweeper to enqueue again."""
    now = utcnow()
    return _take_nodes(
        db,
        [nodes_t.c.state == NodeState.RUNNING.value, nodes_t.c.lease_until < now],
        {"state": NodeState.QUEUED.value, "worker": None, "lease_until": None, "queued_at": now},
        limit,
    )


def _take_nodes(
    db: Database, where: list[Any], values: dict[str, Any], limit: int
) -> list[tuple[str, str, str]]:
    """Move up to ``limit`` nodes matching ``where`` to ``values``, skipping rows another
    sweeper holds (and re-checking ``where`` under the lock); their (run id, key, name)."""
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(nodes_t.c.id).where(*where).limit(limit).with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        moved = conn.execute(
            nodes_t.update()
            .where(nodes_t.c.id.in_([r[0] for r in rows]), *where)
            .values(**values)
            .returning(nodes_t.c.run_id, nodes_t.c.key, nodes_t.c.name)
        ).all()
    return [(r.run_id, r.key, r.name) for r in moved]


def run_started(db: Database, run_id: str) -> dt.datetime | None:
    """When the run (last) started: its message generation."""
    with db.begin() as conn:
        return conn.execute(sa.select(runs_t.c.started_at).where(runs_t.c.id == run_id)).scalar()


def mark_unsent(db: Database, run_id: str, keys: list[str]) -> None:
    """Claimed nodes whose message could not be published (the broker was down): marked
    by an empty ``queued_at`` so a sweeper publishes them once the broker is back."""
    with db.begin() as conn:
        conn.execute(
            nodes_t.update()
            .where(
                nodes_t.c.run_id == run_id,
                nodes_t.c.key.in_(keys),
                nodes_t.c.state == NodeState.QUEUED.value,
            )
            .values(queued_at=None)
        )


def take_unsent(db: Database, limit: int = 500) -> list[tuple[str, str, str]]:
    """Queued nodes never published (see :func:`mark_unsent`), taken by this sweeper."""
    return _take_nodes(
        db,
        [nodes_t.c.state == NodeState.QUEUED.value, nodes_t.c.queued_at.is_(None)],
        {"queued_at": utcnow()},
        limit,
    )


def cancel_run(db: Database, run_id: str, workflow: Workflow | None) -> tuple[list[str], Any]:
    """``runs cancel`` of an active run, in one transaction under the run's lock: its
    pending and queued nodes end ``cancelled`` now (so does the run when nothing runs any
    more); the keys that were queued (their messages are to be revoked) and the run's
    start. Running nodes see ``ctx.cancelled`` and end the run when they finish.
    ``workflow`` (None when it cannot be loaded here) names the nodes never expanded."""
    with db.begin() as conn:
        run = conn.execute(
            sa.select(runs_t.c.state, runs_t.c.started_at)
            .where(runs_t.c.id == run_id)
            .with_for_update()
        ).first()
        if run is None or run.state != RunState.RUNNING.value:
            return [], None
        conn.execute(runs_t.update().where(runs_t.c.id == run_id).values(cancel_requested=True))
        queued = [
            r[0]
            for r in conn.execute(
                sa.select(nodes_t.c.key).where(
                    nodes_t.c.run_id == run_id, nodes_t.c.state == NodeState.QUEUED.value
                )
            )
        ]
        if workflow is not None:
            view = DbView(conn, run_id, workflow)
            _cancel_open(conn, view)
            _maybe_finish_run(conn, view)
    return queued, run.started_at


def open_nodes(db: Database, run_id: str, states: tuple[str, ...]) -> list[tuple[str, str]]:
    """(key, name) of the run's nodes in ``states`` (resume re-enqueues these)."""
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(nodes_t.c.key, nodes_t.c.name).where(
                nodes_t.c.run_id == run_id, nodes_t.c.state.in_(states)
            )
        ).all()
    return [(r.key, r.name) for r in rows]


def progress(db: Database, run_id: str) -> tuple[str, int, int]:
    """(run state, final nodes, known nodes) for a follower's progress bar."""
    with db.begin() as conn:
        state = conn.execute(sa.select(runs_t.c.state).where(runs_t.c.id == run_id)).scalar()
        done, total = conn.execute(
            sa.select(
                sa.func.count().filter(nodes_t.c.state.in_(FINAL)),
                sa.func.count(),
            ).where(nodes_t.c.run_id == run_id)
        ).one()
    return str(state), int(done or 0), int(total or 0)
