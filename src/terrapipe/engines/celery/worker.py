"""The Celery task: execute one node instance of a recorded run, then schedule from the DB.

``run_node(run_id, node_key)`` moves the node from ``queued`` to ``running`` (a message
delivered twice finds it final, or running elsewhere, and does nothing), loads the run's
workflow from this worker's registry (built-ins, entry points, ``--module``), builds a
database-backed runtime and calls the same ``execute_node`` as the local engine. Then, in
one transaction (:func:`claims.finish_node`), it records the node, expands and claims what
it unblocks, and enqueues only that after commit.

While the node runs a thread renews its lease in the database and polls the run's cancel
flag (``ctx.cancelled``); a node retried later goes back to the queue with a countdown,
never sleeping in the worker slot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from terrapipe.core.context import RunStore
from terrapipe.core.execute import execute_node
from terrapipe.core.locks import lock_name
from terrapipe.core.plan import Instance, utcnow
from terrapipe.core.runtime import Hit, cache_rows
from terrapipe.core.states import NodeState
from terrapipe.core.values import decode_outputs
from terrapipe.core.workflow import Workflow
from terrapipe.engines.celery import claims
from terrapipe.errors import InvalidInput
from terrapipe.settings import Settings, get_settings
from terrapipe.store import runstore
from terrapipe.store.artifacts import ArtifactStore, check_files
from terrapipe.store.db import Database

_LOG = logging.getLogger("terrapipe.celery")


@dataclass
class RunInfo:
    workflow: str
    version: str
    params: dict[str, Any]
    force: bool


@dataclass
class WorkerState:
    """What one worker process keeps between messages: its settings, database (opened in
    the process that uses it, never across a fork), registry modules and small caches of
    immutable things (workflows by name and version, run parameters by run id)."""

    settings: Settings
    modules: tuple[str, ...] = ()
    migrated: bool = False  # `terrapipe worker` migrated before it forked: not per process
    _db: Database | None = None
    _pid: int = 0
    _workflows: dict[tuple[str, str], Workflow] = field(default_factory=dict)
    _runs: OrderedDict[str, RunInfo] = field(default_factory=OrderedDict)
    _previous: OrderedDict[str, dict] = field(default_factory=OrderedDict)
    _leases: LeaseKeeper | None = None
    _locks: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)
    _artifacts: ArtifactStore | None = None

    @property
    def db(self) -> Database:
        with self._lock:
            if self._db is None or self._pid != os.getpid():
                self._db = Database(self.settings.sqlalchemy_url, migrate=not self.migrated)
                self._pid = os.getpid()
            return self._db

    @contextlib.contextmanager
    def connection(self) -> Iterator[sa.Connection]:
        """This thread's message connection, kept open between messages (AUTOCOMMIT: a
        single statement costs one round trip; :func:`claims.transaction` wraps the others).

        A pool checkout costs a ping, a reset and bookkeeping on every message; a kept
        connection costs a ping only after it sat idle for ``IDLE_PING_S`` (the database
        may have restarted meanwhile). A database error closes it: the next message opens
        a new one."""
        local = self._local
        db = self.db
        conn = getattr(local, "conn", None)
        if conn is not None and (local.pid != os.getpid() or local.db is not db):
            conn = None  # inherited across a fork or from an older Database: never reused
        if conn is not None and time.monotonic() - local.used > IDLE_PING_S:
            try:
                conn.exec_driver_sql("SELECT 1")
            except sa.exc.DBAPIError:
                self._drop(conn)
                conn = None
        if conn is None:
            conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            local.conn, local.pid, local.db = conn, os.getpid(), db
        try:
            yield conn
        except BaseException:
            self._drop(conn)  # it may be broken, or inside a transaction: not reused
            raise
        finally:
            local.used = time.monotonic()

    def _drop(self, conn: sa.Connection) -> None:
        self._local.conn = None
        with contextlib.suppress(Exception):
            conn.invalidate()
        with contextlib.suppress(Exception):
            conn.close()

    @property
    def leases(self) -> LeaseKeeper:
        if self._leases is None or self._pid != os.getpid():
            db = self.db
            self._leases = LeaseKeeper(db, self.worker_id, self.settings.node_lease_s)
        return self._leases

    def locks(self) -> Any:
        """This process's lock factory (Redis when TERRAPIPE_REDIS_URL is set)."""
        if self._locks is None or self._pid != os.getpid():
            from terrapipe.transfer.locks import LockFactory

            self._locks = LockFactory(
                redis_url=self.settings.redis_url, lock_dir=self.settings.home_dir / "locks"
            )
        return self._locks

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"

    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = ArtifactStore(self.settings.artifacts_dir)
        return self._artifacts

    def workflow(self, name: str, version: str) -> Workflow:
        key = (name, version)
        if key not in self._workflows:
            from terrapipe.core.registry import find_workflow

            self._workflows[key] = find_workflow(name, version, modules=self.modules)
        return self._workflows[key]

    def run(self, run_id: str) -> RunInfo | None:
        info = self._runs.get(run_id)
        if info is None:
            row = runstore.get_run_row(self.db, run_id)
            if row is None:
                return None
            params = decode_outputs(row["params"])
            info = RunInfo(row["workflow"], row["workflow_version"], params, row["force"])
            self._runs[run_id] = info
            while len(self._runs) > 256:
                self._runs.popitem(last=False)
        return info

    def previous_keys(self, conn: Any, run_id: str, workflow: str) -> dict:
        """The previous runs' result keys by (node, item), read once per run (results
        of earlier runs do not change while this one runs)."""
        keys = self._previous.get(run_id)
        if keys is None:
            keys = runstore.previous_keys(conn, workflow, exclude_run=run_id)
            self._previous[run_id] = keys
            while len(self._previous) > 16:
                self._previous.popitem(last=False)
        return keys


_STATE: dict[str, WorkerState] = {}  # the worker process's state, set by `terrapipe worker`


def configure_worker(
    settings: Settings, modules: tuple[str, ...], *, migrated: bool = False
) -> WorkerState:
    """Set this process's worker state (called by ``terrapipe worker`` before it starts;
    ``migrated``: it brought the schema up to date already)."""
    state = WorkerState(settings=settings, modules=tuple(modules), migrated=migrated)
    _STATE["state"] = state
    return state


def warm_up() -> None:
    """Open this pool process's database connection before its first message (Celery's
    ``worker_process_init``): the first node then starts as fast as the others."""
    state = worker_state()
    try:
        with state.connection():
            pass
    except Exception as exc:  # noqa: BLE001 - the first message will try again and say why
        _LOG.warning("opening the database failed: %s", exc)


def worker_state() -> WorkerState:
    state = _STATE.get("state")
    if state is None:  # a worker started by `celery worker` itself: settings from env
        state = configure_worker(get_settings(), ())
    return state


class _OnePlan:
    """The slice of a run plan ``execute_node`` reads: one instance, its workflow, and
    what it reads from its upstreams (through the rules, over the stored rows)."""

    def __init__(self, conn: Any, run_id: str, workflow: Workflow, inst: Instance) -> None:
        self.conn, self.run_id, self.workflow = conn, run_id, workflow
        self.instances = {inst.key: inst}

    def inputs_for(self, inst: Instance) -> tuple[dict[str, Any], dict[str, Any], Any]:
        from terrapipe.core import rules

        node = self.workflow.nodes[inst.name]
        nodes = self.workflow.nodes
        if all(up == node.map_over and nodes[up].map_over is None for up in node.upstreams):
            inputs, keys, item = rules.inputs_for(self.workflow, inst, None)  # no rows needed
        else:
            view = claims.DbView(self.conn, self.run_id, self.workflow)
            inputs, keys, item = rules.inputs_for(self.workflow, inst, view)
        inst.item = item
        return inputs, keys, item


class NodeRuntime:
    """:class:`terrapipe.core.execute.Runtime` for one node on a worker, over the database.

    Cache look-ups and the previous run's key components are read from the store; the
    result and the outcome are kept and recorded by :func:`claims.finish_node` in the
    same transaction that schedules what follows."""

    def __init__(
        self,
        state: WorkerState,
        conn: Any,
        run_id: str,
        workflow: Workflow,
        inst: Instance,
        info: RunInfo,
    ) -> None:
        db = state.db
        self.db = db
        self.conn = conn  # this message's connection: reads only, until the node runs
        self.state = state
        self.run_id = run_id
        self.workflow = workflow
        self.plan = _OnePlan(conn, run_id, workflow, inst)
        self.params = info.params
        self.force = info.force
        self.artifacts = state.artifacts()
        self.store = RunStore(db, self.artifacts, state.settings)
        self.cancel_event = threading.Event()
        self.cache_entry: dict[str, Any] | None = None
        self.files: list[dict[str, Any]] = []
        self.retry_in: float | None = None
        self._previous: tuple[str, str | None, Any] | None = None

    def retry_later(self, inst: Instance, wait: float) -> bool:
        """Retries do not sleep in the worker slot: the node goes back to its queue with a
        countdown (see :func:`_execute`)."""
        self.retry_in = wait
        return True

    def lookup_cache(self, key: str) -> Hit | None:
        """The cache entry of ``key`` and, in the same round trip, the components of this
        instance's previous result (what :meth:`previous_components` then answers)."""
        (inst,) = self.plan.instances.values()
        keys = self.state.previous_keys(self.conn, self.run_id, self.workflow.name)
        previous = keys.get((inst.name, inst.item_id))
        params = {"p_key": key, "p_prev": previous}
        row = claims.driver_query(self.conn, _LOOKUP_SQL, params, named=True).fetchone()
        self._previous = (inst.name, inst.item_id, row.components if row is not None else None)
        if row is None or row.found is None:
            return None
        files: list[runstore.ArtifactFile] = []
        if row.artifact_dir is not None:
            artifacts_t = runstore.artifacts_t
            files = [
                (r[0], r[1], r[2])
                for r in self.conn.execute(
                    sa.select(artifacts_t.c.path, artifacts_t.c.size, artifacts_t.c.digest)
                    .where(artifacts_t.c.cache_key == key)
                    .order_by(artifacts_t.c.id)
                )
            ]
        hit = Hit(decode_outputs(row.outputs), row.artifact_dir, files)
        if hit.artifact_dir:
            # as on the local engine: a deleted, truncated or rewritten artifact is not served
            stale = check_files(hit.artifact_dir, files)
            if stale:
                return Hit(hit.outputs, hit.artifact_dir, files, stale=stale)
        return hit

    def previous_components(self, name: str, item_id: str | None) -> dict[str, Any] | None:
        known = self._previous
        if known is not None and known[:2] == (name, item_id):
            return known[2]
        keys = self.state.previous_keys(self.conn, self.run_id, self.workflow.name)
        key = keys.get((name, item_id))
        if key is None:
            return None
        cache_t = runstore.cache_t
        return self.conn.execute(
            sa.select(cache_t.c.components).where(cache_t.c.key == key)
        ).scalar()

    def save_result(
        self,
        inst: Instance,
        components: dict[str, Any],
        encoded_outputs: Any,
        artifact_dir: Path | None,
        files: list[tuple[Path, int, str | None]],
    ) -> None:
        self.cache_entry, self.files = cache_rows(
            self.run_id, inst, components, encoded_outputs, artifact_dir, files
        )

    def record(self, inst: Instance) -> None:
        """Nothing to record while the node runs: its start was recorded by the claim, its
        outcome is by :func:`claims.finish_node`."""

    def progress(self, inst: Instance, done: float, total: float) -> None:
        """Progress inside a node is not recorded by this engine (nodes are the unit)."""


# a cache entry by key and the components of another (the previous result), in one row
# (``found`` says whether the first exists); driver SQL, as claims._START_SQL
_LOOKUP_SQL = (
    "SELECT hit.key AS found, hit.outputs, hit.artifact_dir, prev.components "
    "FROM (SELECT 1) AS one "
    "LEFT JOIN cache_entries AS hit ON hit.key = %(p_key)s "
    "LEFT JOIN cache_entries AS prev ON prev.key = %(p_prev)s"
)


class LeaseKeeper:
    """One thread per worker process renewing the leases of the nodes it runs, every
    third of the lease, and polling their runs' cancel flags (``ctx.cancelled``)."""

    def __init__(self, db: Database, worker: str, lease_s: float) -> None:
        self.db, self.worker, self.lease_s = db, worker, lease_s
        self._held: dict[tuple[str, str], _Held] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def hold(self, run_id: str, key: str, cancel: threading.Event) -> Iterator[_Held]:
        held = _Held(cancel)
        with self._lock:
            self._held[(run_id, key)] = held
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="terrapipe-leases", daemon=True
                )
                self._thread.start()
        try:
            yield held
        finally:
            with self._lock:
                self._held.pop((run_id, key), None)

    def _loop(self) -> None:
        interval = max(0.2, self.lease_s / 3)
        while True:
            time.sleep(interval)
            with self._lock:
                held = dict(self._held)
            if not held:
                continue
            try:
                ours, cancelled = claims.renew_leases(
                    self.db, list(held), self.worker, self.lease_s
                )
            except Exception as exc:  # noqa: BLE001 - the database blinked: next time
                _LOG.warning("renewing leases failed: %s", exc)
                continue
            for ident, h in held.items():
                if ident[0] in cancelled:
                    h.cancel.set()
                if ident not in ours:
                    h.lost = True
                    h.cancel.set()  # another worker owns it now: stop wasting the slot


@dataclass
class _Held:
    cancel: threading.Event
    lost: bool = False


def _instance(workflow: Workflow, row: Any) -> Instance:
    node = workflow.nodes[row.name]
    item = decode_outputs(row.item) if row.item is not None else None
    over_unmapped = node.map_over is not None and workflow.nodes[node.map_over].map_over is None
    return Instance(
        key=row.key,
        name=row.name,
        map_index=row.map_index,
        item=item,
        item_id=row.item_id,
        item_key={"item": row.item_id} if over_unmapped and row.map_index >= 0 else None,
        attempts=row.attempts or 0,  # attempts made before (a retry re-enqueued)
    )


def run_node(run_id: str, node_key: str) -> str:
    """The Celery task body: execute one node instance; returns what happened (for logs)."""
    return execute_message(worker_state(), run_id, node_key)


IDLE_PING_S = 2.0


def execute_message(state: WorkerState, run_id: str, node_key: str) -> str:
    """One message on this thread's kept connection (see :meth:`WorkerState.connection`)."""
    with state.connection() as conn:
        return _execute(state, conn, run_id, node_key)


def _execute(state: WorkerState, conn: Any, run_id: str, node_key: str) -> str:
    settings = state.settings
    db = state.db
    worker = state.worker_id
    row = claims.start_node(conn, run_id, node_key, worker, settings.node_lease_s)
    if row is None:
        return "skipped: final or running elsewhere"
    info = state.run(run_id)
    if info is None:
        return "skipped: no such run"
    try:
        workflow = state.workflow(info.workflow, info.version)
    except Exception as exc:  # noqa: BLE001 - named on the run, never a hang
        error = (
            f"this worker does not know workflow {info.workflow!r} version {info.version} "
            f"({exc}); start it with `terrapipe worker --module ...` naming the module"
        )
        _LOG.error("run %s: %s", run_id, error)
        claims.fail_run(db, run_id, error)
        return "failed: unknown workflow"
    inst = _instance(workflow, row)
    bad_lock: InvalidInput | None = None
    try:
        lock = _take_lock(state, workflow, inst, info)
    except InvalidInput as exc:  # the node fails with it, like any bad input
        lock, bad_lock = None, exc
    if lock is False:  # another node holds its dataset: wait off the slot, in the queue
        if claims.requeue(db, run_id, node_key, worker, row.attempts or 0, None):
            publish(state, run_id, workflow, [node_key], gen=_gen(row), countdown=LOCK_RETRY_S)
        return "waiting for its lock"
    try:
        return _run(state, conn, run_id, node_key, workflow, inst, info, row, bad_lock)
    finally:
        if lock is not None and lock is not False:
            lock.release()


LOCK_RETRY_S = 0.5


def _take_lock(state: WorkerState, workflow: Workflow, inst: Instance, info: RunInfo) -> Any:
    """The held lease of the node's dataset lock, None (no lock), or False (held by
    another node: try again later). The lock lives in Redis (TERRAPIPE_REDIS_URL), so it
    holds across machines; without Redis, lock files under TERRAPIPE_HOME/locks."""
    name = lock_name(workflow, inst, info.params)
    if name is None:
        return None
    from terrapipe.errors import LockTimeout

    try:
        return state.locks().semaphore(f"dataset:{name}", 1).acquire(timeout=0)
    except LockTimeout:
        return False


def _run(
    state: WorkerState,
    conn: Any,
    run_id: str,
    node_key: str,
    workflow: Workflow,
    inst: Instance,
    info: RunInfo,
    row: Any,
    bad_lock: Exception | None = None,
) -> str:
    db = state.db
    worker = state.worker_id
    runtime = NodeRuntime(state, conn, run_id, workflow, inst, info)
    if row.cancel_requested:
        runtime.cancel_event.set()
    with state.leases.hold(run_id, node_key, runtime.cancel_event) as lease:
        try:
            if bad_lock is not None:
                raise bad_lock
            execute_node(run_id, node_key, runtime)
        except BaseException as exc:  # noqa: BLE001 - never lose a node
            inst.state, inst.error = NodeState.FAILED, f"{type(exc).__name__}: {exc}"
            inst.error_kind = "input" if isinstance(exc, InvalidInput) else "task"
            inst.finished_at = utcnow()
    if lease.lost:
        return "dropped: lease lost"
    if runtime.retry_in is not None and inst.state == NodeState.RUNNING:
        error = inst.error or "failed"
        if claims.requeue(db, run_id, node_key, worker, inst.attempts, error):
            gen = _gen(row)
            publish(state, run_id, workflow, [node_key], gen=gen, countdown=runtime.retry_in)
        return f"retry in {runtime.retry_in:g}s"
    ok = inst.state == NodeState.SUCCEEDED
    outcome = claims.Outcome(
        node_id=row.id,
        key=inst.key,
        name=inst.name,
        map_index=inst.map_index,
        state=inst.state,
        reason=inst.reason,
        cache_key=inst.cache_key,
        attempts=inst.attempts,
        error=inst.error,
        error_kind=inst.error_kind,
        traceback=inst.traceback,
        started_at=inst.started_at,
        finished_at=inst.finished_at,
        outputs=inst.outputs,
        item_id=inst.item_id,
        cache_entry=runtime.cache_entry if ok else None,
        files=runtime.files,
    )
    cancelled = runtime.cancel_event.is_set()
    claimed = claims.finish_node(db, conn, workflow, run_id, outcome, worker, cancelled=cancelled)
    if claimed:
        publish(state, run_id, workflow, claimed, gen=_gen(row))
    return str(inst.state)


def _gen(row: Any) -> str:
    """The message generation of the run of a started node (see :func:`app.generation`)."""
    from terrapipe.engines.celery.app import generation

    return generation(row.run_started)


def publish(
    state: WorkerState,
    run_id: str,
    workflow: Workflow,
    keys: list[str],
    *,
    gen: str,
    countdown: float | None = None,
) -> None:
    """Enqueue claimed nodes; if the broker is down, mark them unsent for a sweeper."""
    from terrapipe.engines.celery.app import BrokerUnavailable, celery_app, enqueue

    try:
        enqueue(
            celery_app(state.settings.broker_url, state.settings.broker_visibility_s),
            run_id,
            workflow,
            keys,
            state.settings.default_queue,
            gen=gen,
            countdown=countdown,
        )
    except BrokerUnavailable as exc:
        _LOG.warning("run %s: %s; %d node(s) left for the sweeper", run_id, exc, len(keys))
        claims.mark_unsent(state.db, run_id, keys)
