"""Reading and writing runs, node instances and cache entries (SQLAlchemy Core).

Writes from a running engine go through :class:`RunRecorder`, which buffers them and
flushes in one transaction every fraction of a second: a 10,000-node run costs a handful
of transactions, not 30,000. A crash loses at most the last interval; a rerun redoes it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from terrapipe.core.states import RUN_ACTIVE, NodeState, RunState
from terrapipe.store.db import Database, json_text
from terrapipe.store.models import ArtifactRecord, CacheEntry, NodeRecord, RunRecord
from terrapipe.store.types import UTCDateTime

runs_t = RunRecord.__table__
nodes_t = NodeRecord.__table__
cache_t = CacheEntry.__table__
artifacts_t = ArtifactRecord.__table__

HISTORY_RUNS = 5
_UNFINISHED = (NodeState.PENDING, NodeState.QUEUED, NodeState.RUNNING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- runs ------------------------------------------------------------------------------
def as_created(values: dict[str, Any]) -> dict[str, Any]:
    """The row :func:`create_run` records for ``values``: every column, defaults filled."""
    row: dict[str, Any] = dict.fromkeys(runs_t.c.keys())
    row.update(created_at=utcnow(), state=RunState.QUEUED, progress=0.0, cancel_requested=False)
    row.update(force=False, params={}, engine="local")
    row.update(values)
    return row


def create_runs(db: Database, rows: list[dict[str, Any]]) -> None:
    """Insert complete run rows (:func:`as_created`) in one transaction."""
    if rows:
        values = [as_created(r) for r in rows]  # every column: one statement for all
        db.write_polling(lambda conn: bulk_insert(db, conn, runs_t, values))


def create_run(db: Database, **values: Any) -> None:
    values.setdefault("created_at", utcnow())
    values.setdefault("state", RunState.QUEUED)
    values.setdefault("progress", 0.0)
    values.setdefault("cancel_requested", False)
    with db.begin() as conn:
        conn.execute(runs_t.insert().values(**values))


def update_run(db: Database, run_id: str, **values: Any) -> None:
    with db.begin() as conn:
        conn.execute(runs_t.update().where(runs_t.c.id == run_id).values(**values))


# built once: a status poll reads one row, and building the statement cost as much as
# running it
_RUN_BY_ID = sa.select(runs_t).where(runs_t.c.id == sa.bindparam("run_id"))


def get_run_row(db: Database, run_id: str) -> dict[str, Any] | None:
    with db.connect() as conn:  # a read: the transaction ends when it closes
        row = conn.execute(_RUN_BY_ID, {"run_id": run_id}).mappings().first()
        if row is None and len(run_id) < 32:  # a unique prefix is accepted, like git
            rows = (
                conn.execute(
                    sa.select(runs_t)
                    .where(runs_t.c.id.startswith(run_id, autoescape=True))
                    .limit(2)
                )
                .mappings()
                .all()
            )
            row = rows[0] if len(rows) == 1 else None
    return dict(row) if row else None


def list_run_rows(
    db: Database,
    *,
    limit: int = 20,
    offset: int = 0,
    workflow: str | None = None,
    state: str | None = None,
) -> list[dict[str, Any]]:
    query = (
        sa.select(runs_t)
        .order_by(runs_t.c.created_at.desc(), runs_t.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if workflow:
        query = query.where(runs_t.c.workflow == workflow)
    if state:
        query = query.where(runs_t.c.state == state)
    with db.begin() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def node_rows(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Node instances of a run with their cached outputs, in execution-graph order."""
    query = (
        sa.select(nodes_t, cache_t.c.outputs)
        .select_from(nodes_t.outerjoin(cache_t, cache_t.c.key == nodes_t.c.cache_key))
        .where(nodes_t.c.run_id == run_id)
        .order_by(nodes_t.c.id)
    )
    with db.begin() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def active_owned_runs(db: Database, host: str) -> list[dict[str, Any]]:
    """Runs still ``queued`` or ``running`` whose recorded owner is on ``host``."""
    query = sa.select(
        runs_t.c.id, runs_t.c.owner_host, runs_t.c.owner_pid, runs_t.c.owner_started
    ).where(
        runs_t.c.state.in_(sorted(RUN_ACTIVE)),
        runs_t.c.owner_host == host,
        runs_t.c.owner_pid.is_not(None),
    )
    with db.begin() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


# the state as a literal, so both planners may use the partial index of queued runs
# (ix_runs_queued_owner, migration 0013); SQLite never does for a bound parameter
_QUEUED_OWNED = (
    sa.select(
        runs_t.c.id,
        runs_t.c.workflow,
        runs_t.c.workflow_version,
        runs_t.c.params,
        runs_t.c.force,
        runs_t.c.input_urls,
    )
    .where(
        sa.text(f"runs.state = '{RunState.QUEUED.value}'"),
        runs_t.c.owner_host == sa.bindparam("host"),
        runs_t.c.owner_pid == sa.bindparam("pid"),
    )
    .order_by(runs_t.c.created_at)
    .limit(sa.bindparam("limit"))
)


def queued_owned_runs(db: Database, owner_host: str, owner_pid: int, *, limit: int) -> list:
    """The oldest runs still ``queued`` that were handed to process ``owner_pid`` on
    ``owner_host`` (a runner): id, workflow, workflow_version, params, force, input_urls."""
    with db.connect() as conn:
        params = {"host": owner_host, "pid": owner_pid, "limit": limit}
        return [dict(r) for r in conn.execute(_QUEUED_OWNED, params).mappings()]


_CLAIM = (
    runs_t.update()
    .where(runs_t.c.id == sa.bindparam("run_id"), runs_t.c.state == RunState.QUEUED)
    .values(state=RunState.RUNNING, started_at=sa.bindparam("now"))
)


def claim_queued(db: Database, run_id: str) -> bool:
    """Move a ``queued`` run to ``running`` for the process about to execute it; False if it
    is no longer queued (cancelled meanwhile)."""
    with db.begin() as conn:
        result = conn.execute(_CLAIM, {"run_id": run_id, "now": utcnow()})
    return result.rowcount == 1


def fail_active(db: Database, run_id: str, *, error: str, error_kind: str | None) -> bool:
    """End a run ``failed`` if it is still active (a run cancelled meanwhile stays so);
    whether this call did."""
    with db.begin() as conn:
        result = conn.execute(
            runs_t.update()
            .where(runs_t.c.id == run_id, runs_t.c.state.in_(sorted(RUN_ACTIVE)))
            .values(state=RunState.FAILED, error=error, error_kind=error_kind, finished_at=utcnow())
        )
    return result.rowcount == 1


_CLAIM_MANY = (
    runs_t.update()
    .where(
        runs_t.c.id.in_(sa.bindparam("run_ids", expanding=True)),
        runs_t.c.state == RunState.QUEUED,
    )
    .values(state=RunState.RUNNING, started_at=sa.bindparam("now"))
    .returning(runs_t.c.id)
)


def claim_many(db: Database, run_ids: list[str]) -> set[str]:
    """:func:`claim_queued` for several runs in one transaction: the ids it claimed (a run
    cancelled meanwhile is not among them)."""
    if not run_ids:
        return set()
    with db.begin() as conn:
        return set(conn.execute(_CLAIM_MANY, {"run_ids": run_ids, "now": utcnow()}).scalars())


def mark_interrupted(
    db: Database, run_id: str, *, owner_pid: int, owner_started: str | None, error: str
) -> bool:
    """Mark a run ``interrupted`` if it is still active under that same owner; its unfinished
    nodes end ``cancelled``. Conditional, so two readers (or a resume racing a reader) mark
    it once; returns whether this call did."""
    now = utcnow()
    with db.begin() as conn:
        owner_match = runs_t.c.owner_pid == owner_pid
        owner_match &= (
            runs_t.c.owner_started.is_(None)
            if owner_started is None
            else runs_t.c.owner_started == owner_started
        )
        result = conn.execute(
            runs_t.update()
            .where(
                runs_t.c.id == run_id,
                runs_t.c.state.in_(sorted(RUN_ACTIVE)),
                owner_match,
            )
            .values(state=RunState.INTERRUPTED, finished_at=now, error=error)
        )
        if result.rowcount != 1:
            return False
        conn.execute(
            nodes_t.update()
            .where(
                nodes_t.c.run_id == run_id,
                nodes_t.c.state.in_(_UNFINISHED),
            )
            .values(state=NodeState.CANCELLED, reason="run interrupted", finished_at=now)
        )
    return True


def restart_run(db: Database, run_id: str, *, from_states: tuple[str, ...], **values: Any) -> bool:
    """Move a finished run back to ``running`` for a resume (conditional on its state, so two
    resumes of one run cannot both start); forgets its node rows, which the resumed run
    records again (finished work comes back from the cache)."""
    with db.begin() as conn:
        result = conn.execute(
            runs_t.update()
            .where(runs_t.c.id == run_id, runs_t.c.state.in_(from_states))
            .values(
                state="running",
                cancel_requested=False,
                finished_at=None,
                error=None,
                error_kind=None,
                **values,
            )
        )
        if result.rowcount != 1:
            return False
        conn.execute(nodes_t.delete().where(nodes_t.c.run_id == run_id))
    return True


_CANCEL_REQUESTED = sa.select(runs_t.c.cancel_requested).where(
    runs_t.c.id == sa.bindparam("run_id")
)


def cancel_requested(db: Database, run_id: str) -> bool:
    """Whether someone asked to cancel the run (read by its engine while it runs)."""
    with db.connect() as conn:
        return bool(conn.execute(_CANCEL_REQUESTED, {"run_id": run_id}).scalar())


# -- cache -----------------------------------------------------------------------------
ArtifactFile = tuple[str, int, str | None]  # path, size, digest (content tasks only)


# the statements a run reads its cache through, built once (building one cost more than
# running it)
_CACHE_ROW = sa.select(cache_t.c.outputs, cache_t.c.artifact_dir, cache_t.c.components).where(
    cache_t.c.key == sa.bindparam("key")
)
_CACHE_FILES = (
    sa.select(artifacts_t.c.path, artifacts_t.c.size, artifacts_t.c.digest)
    .where(artifacts_t.c.cache_key == sa.bindparam("key"))
    .order_by(artifacts_t.c.id)
)


def cache_row(db: Database, key: str) -> dict[str, Any] | None:
    """A cache entry's outputs, artifact folder, components and (under ``files``) the files
    recorded in its artifact folder."""
    with db.connect() as conn:  # reads: the transaction ends when it closes
        row = conn.execute(_CACHE_ROW, {"key": key}).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["files"] = []
        if out["artifact_dir"] is not None:
            out["files"] = [(r[0], r[1], r[2]) for r in conn.execute(_CACHE_FILES, {"key": key})]
    return out


def _recent_runs() -> sa.ScalarSelect[Any]:
    """The ids of a workflow's last ``HISTORY_RUNS`` runs (bound as ``workflow``)."""
    return (
        sa.select(runs_t.c.id)
        .where(runs_t.c.workflow == sa.bindparam("workflow"))
        .order_by(runs_t.c.created_at.desc())
        .limit(HISTORY_RUNS)
        .scalar_subquery()
    )


_HISTORY_FILES = (
    sa.select(artifacts_t.c.cache_key, artifacts_t.c.path, artifacts_t.c.size)
    .add_columns(artifacts_t.c.digest)
    .where(
        artifacts_t.c.cache_key.in_(
            sa.select(nodes_t.c.cache_key)
            .where(
                nodes_t.c.run_id.in_(_recent_runs()),
                nodes_t.c.state.in_(("succeeded", "cached")),
                nodes_t.c.cache_key.is_not(None),
            )
            .distinct()
        )
    )
    .order_by(artifacts_t.c.id)
)
_HISTORY = (
    sa.select(
        nodes_t.c.name,
        nodes_t.c.item_id,
        nodes_t.c.cache_key,
        sa.cast(cache_t.c.outputs, sa.Text).label("outputs"),
        cache_t.c.artifact_dir,
    )
    .select_from(nodes_t.join(cache_t, cache_t.c.key == nodes_t.c.cache_key))
    .where(nodes_t.c.run_id.in_(_recent_runs()), nodes_t.c.state.in_(("succeeded", "cached")))
    .order_by(nodes_t.c.id)
)


def history_files(db: Database, workflow: str) -> dict[str, list[ArtifactFile]]:
    """Recorded artifact files of the results :func:`history` returns, by cache key: one
    query per run, so checking a cached result's files costs no database round trip."""
    out: dict[str, list[ArtifactFile]] = {}
    with db.connect() as conn:
        for key, path, size, digest in conn.execute(_HISTORY_FILES, {"workflow": workflow}):
            out.setdefault(key, []).append((path, size, digest))
    return out


def history(db: Database, workflow: str) -> list[dict[str, Any]]:
    """Successful node results of the last few runs of a workflow, oldest first."""
    with db.connect() as conn:
        rows = conn.execute(_HISTORY, {"workflow": workflow}).all()
    return [
        {
            "name": r[0],
            "item_id": r[1],
            "cache_key": r[2],
            "outputs": json.loads(r[3]) if r[3] is not None else None,
            "artifact_dir": r[4],
        }
        for r in rows
    ]


_PREVIOUS_KEYS = (
    sa.select(nodes_t.c.name, nodes_t.c.item_id, nodes_t.c.cache_key)
    .where(
        nodes_t.c.run_id.in_(_recent_runs()),
        nodes_t.c.run_id != sa.bindparam("run_id"),
        nodes_t.c.state.in_(("succeeded", "cached")),
        nodes_t.c.cache_key.is_not(None),
    )
    .order_by(nodes_t.c.id)
)


def previous_keys(
    conn: sa.Connection, workflow: str, *, exclude_run: str
) -> dict[tuple[str, str | None], str]:
    """(node name, item id) -> cache key of the newest successful result among the
    workflow's last few runs other than ``exclude_run``: what :func:`history` gives the
    local engine, without the outputs (a worker of a distributed engine reads it once per
    run)."""
    return {
        (r[0], r[1]): r[2]
        for r in conn.execute(_PREVIOUS_KEYS, {"workflow": workflow, "run_id": exclude_run})
    }


_CACHE_KEYS = (
    sa.select(cache_t.c.key)
    .where(cache_t.c.task_name.in_(sa.bindparam("names", expanding=True)))
    .limit(sa.bindparam("limit"))
)


def cache_keys(db: Database, task_names: list[str], *, limit: int) -> set[str] | None:
    """Every cache key of these tasks, or None if there are more than ``limit``."""
    with db.connect() as conn:
        rows = conn.execute(_CACHE_KEYS, {"names": task_names, "limit": limit + 1}).all()
    return None if len(rows) > limit else {r[0] for r in rows}


def components_of(db: Database, key: str) -> dict[str, Any] | None:
    with db.begin() as conn:
        return conn.execute(sa.select(cache_t.c.components).where(cache_t.c.key == key)).scalar()


def json_param(value: Any) -> Any:
    """A JSON column's value as the driver takes it in a raw statement (text, or NULL)."""
    return None if value is None else json_text(value)


def _sqlite_datetime(value: Any) -> Any:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite storage format


def _converter(db: Database, column: sa.Column) -> Any:
    """How a value of this column goes to the driver, matching what SQLAlchemy stores."""
    if isinstance(column.type, sa.JSON):
        return json_param
    if isinstance(column.type, sa.DateTime | UTCDateTime) and db.is_sqlite:
        return _sqlite_datetime
    return None


def _driver_rows(
    db: Database, table: sa.Table, rows: list[dict[str, Any]]
) -> tuple[list[sa.Column], list[tuple[Any, ...]]]:
    """The columns named by ``rows[0]`` and every row as the driver takes it, each value
    converted as SQLAlchemy would store it (:func:`_converter`)."""
    cols = [c for c in table.columns if c.name in rows[0]]
    names_conv = [(c.name, _converter(db, c)) for c in cols]
    params = [
        tuple(row.get(n) if conv is None else conv(row.get(n)) for n, conv in names_conv)
        for row in rows
    ]
    return cols, params


def bulk_insert(db: Database, conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """INSERT many rows through the driver's executemany (rows with the same keys)."""
    if not rows:
        return
    cols, params = _driver_rows(db, table, rows)
    mark = "?" if db.is_sqlite else "%s"
    names = ", ".join(f'"{c.name}"' for c in cols)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join([mark] * len(cols))})'
    conn.exec_driver_sql(sql, params)


def bulk_upsert(
    db: Database,
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    conflict: tuple[str, ...],
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE for many rows through the driver's executemany.

    SQLAlchemy's per-row parameter processing costs more than SQLite's insert itself at
    10,000 rows; values are converted once here instead (see :func:`_sql_value`).
    """
    if not rows:
        return
    cols, params = _driver_rows(db, table, rows)
    mark = "?" if db.is_sqlite else "%s"
    names = ", ".join(f'"{c.name}"' for c in cols)
    updates = ", ".join(f'"{c.name}" = excluded."{c.name}"' for c in cols if c.name not in conflict)
    sql = (
        f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join([mark] * len(cols))}) '
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
    )
    conn.exec_driver_sql(sql, params)


@functools.lru_cache(maxsize=64)
def _run_update(columns: tuple[str, ...]) -> sa.Update:
    """``UPDATE runs SET <columns> WHERE id = :run_id_``, built once per set of columns
    (values bound as ``v_<column>``): a run's flushes repeat the same few."""
    return (
        runs_t.update()
        .where(runs_t.c.id == sa.bindparam("run_id_"))
        .values({c: sa.bindparam(f"v_{c}", type_=runs_t.c[c].type) for c in columns})
    )


class RunRecorder:
    """Buffers node and cache writes of one run; :meth:`flush` writes them in one go.

    Writes are upserts keyed by (run, node key), so the same instance recorded as pending,
    running and finished costs one row, and at most one write per flush.
    """

    def __init__(self, db: Database, run_id: str) -> None:
        self.db = db
        self.run_id = run_id
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._nodes: dict[str, dict[str, Any]] = {}
        self._cache: dict[str, dict[str, Any]] = {}
        self._artifacts: dict[str, list[dict[str, Any]]] = {}
        self._run: dict[str, Any] = {}

    def node(self, row: dict[str, Any]) -> None:
        row = {**row, "run_id": self.run_id}
        with self._lock:
            self._nodes[row["key"]] = row

    def cache_entry(self, row: dict[str, Any], files: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            self._cache[row["key"]] = row
            self._artifacts[row["key"]] = list(files)

    def run(self, **values: Any) -> None:
        with self._lock:
            self._run.update(values)

    def flush(self) -> None:
        with self._flush_lock:  # keep flushes in order (writer thread and final flush)
            with self._lock:
                nodes, self._nodes = self._nodes, {}
                cache, self._cache = self._cache, {}
                artifacts, self._artifacts = self._artifacts, {}
                run, self._run = self._run, {}
            if not (nodes or cache or run):
                return
            with self.db.begin() as conn:
                if cache:
                    bulk_upsert(self.db, conn, cache_t, list(cache.values()), ("key",))
                    conn.execute(
                        artifacts_t.delete().where(artifacts_t.c.cache_key.in_(list(cache)))
                    )
                    files = [f for rows in artifacts.values() for f in rows]
                    if files:
                        conn.execute(artifacts_t.insert(), files)
                if nodes:
                    bulk_upsert(self.db, conn, nodes_t, list(nodes.values()), ("run_id", "key"))
                if run:
                    conn.execute(
                        _run_update(tuple(sorted(run))),
                        {"run_id_": self.run_id, **{f"v_{k}": v for k, v in run.items()}},
                    )
