"""The celery engine: node instances executed by Celery workers on any machine.

The database (PostgreSQL) is the source of truth; Celery only carries ``(run_id,
node_key)`` messages. ``run(job)`` records the run's initial node rows, claims the ready
ones with the plan rules inside one transaction (:mod:`.claims`) and enqueues only those,
after commit; workers (``terrapipe worker``, :mod:`.worker`) do the rest, each finished
node claiming its successors the same way. ``wait=True`` follows the run by polling the
store until it is final.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from terrapipe.core.states import RUN_FINAL, NodeState
from terrapipe.engines.base import RunJob
from terrapipe.engines.celery import claims
from terrapipe.engines.celery.app import (
    BrokerUnavailable,
    celery_app,
    check_broker_url,
    enqueue,
    generation,
    revoke,
    task_id,
)
from terrapipe.errors import InvalidInput
from terrapipe.settings import Settings
from terrapipe.store.db import Database

__all__ = ["BrokerUnavailable", "CeleryEngine", "check_database"]

_LOG = logging.getLogger("terrapipe.celery")
RESUME_STATES = (NodeState.PENDING.value, NodeState.QUEUED.value)


def check_database(db: Database) -> None:
    """The celery engine needs a database every worker reaches: PostgreSQL, not SQLite."""
    if db.is_sqlite:
        raise InvalidInput(
            "the celery engine needs PostgreSQL: set TERRAPIPE_DATABASE_URL to a "
            "postgresql:// URL every worker can reach (SQLite is local to one machine)"
        )


@dataclass
class FollowedRun:
    """What a progress bar reads while a run is followed (as from a RunPlan)."""

    n_done: int
    instances: range


class CeleryEngine:
    """Hands recorded runs to Celery workers through the database and the broker."""

    name = "celery"

    def __init__(self, poll: float = 0.2) -> None:
        self.poll = poll

    def check(self, db: Database, settings: Settings) -> None:
        """Refuse before anything is recorded: SQLite, or no broker configured."""
        check_database(db)
        check_broker_url(settings.broker_url)

    def run(self, job: RunJob, *, wait: bool = True) -> None:
        store = job.store
        db, settings = store.db, store.settings
        try:
            self.check(db, settings)
            app = celery_app(settings.broker_url, settings.broker_visibility_s)
            claimed, started = claims.start_run(db, job.workflow, job.run_id)
            try:
                gen = generation(started)
                enqueue(app, job.run_id, job.workflow, claimed, settings.default_queue, gen=gen)
            except BrokerUnavailable as exc:
                claims.fail_run(db, job.run_id, str(exc))
                raise
            if wait:
                self.follow(db, job.run_id, job.on_update)
        finally:
            if job.own_db:
                db.dispose()
        return None

    def follow(self, db: Database, run_id: str, on_update=None) -> str:
        """Poll the store until the run is final; its final state."""
        while True:
            state, done, total = claims.progress(db, run_id)
            if on_update is not None:
                on_update(FollowedRun(done, range(total)))
            if state in RUN_FINAL:
                return state
            time.sleep(self.poll)

    def resume_active(self, db: Database, settings: Settings, run_id: str, workflow) -> int:
        """``runs resume`` of a run still active: running nodes whose lease expired go back
        to ``queued``; every ``queued`` node is enqueued again (a duplicate message finds
        the node taken or final and does nothing). How many were enqueued."""
        self.check(db, settings)
        claims.expired_leases(db)
        keys = [k for k, _ in claims.open_nodes(db, run_id, (NodeState.QUEUED.value,))]
        app = celery_app(settings.broker_url, settings.broker_visibility_s)
        gen = generation(claims.run_started(db, run_id))
        return enqueue(app, run_id, workflow, keys, settings.default_queue, gen=gen)

    def cancel_active(self, db: Database, settings: Settings, run_id: str, workflow) -> None:
        """``runs cancel`` of a running run: the request is recorded (``cancel_requested``,
        in the transaction of :func:`claims.cancel_run`), pending and queued nodes end
        ``cancelled`` at once and the messages of the queued ones are revoked (workers
        discard them on arrival); running nodes see ``ctx.cancelled`` within a third of
        their lease.
        ``workflow`` may be None (not loadable here): unexpanded nodes are then recorded
        cancelled by the last running node to finish.

        The broker connection is made before the cancel is recorded, so the revoke goes
        out right after the commit: a worker learns of a cancel from the database within a
        third of a lease, and messages it takes before the revoke arrives are only skipped
        (their nodes are final), not discarded unopened."""
        with contextlib.ExitStack() as stack:
            conn = None
            try:
                app = celery_app(settings.broker_url, settings.broker_visibility_s)
                conn = stack.enter_context(app.connection_for_write())
                conn.ensure_connection(max_retries=1)
            except Exception as exc:  # noqa: BLE001 - the cancel is recorded regardless
                _LOG.warning("run %s: cannot reach the broker to revoke: %s", run_id, exc)
                conn = None
            queued, started = claims.cancel_run(db, run_id, workflow)
            if not queued or conn is None:
                return
            ids = [task_id(run_id, generation(started), key) for key in queued]
            try:
                revoke(app, ids, connection=conn)
            except Exception as exc:  # noqa: BLE001 - revoking only spares the messages' trip
                _LOG.warning("run %s: revoking its queued messages failed: %s", run_id, exc)
