"""The celery engine's per-node statements read a node's own rows, however big the run.

On a new database (a table never analyzed: the first big run of an install) PostgreSQL
once planned the start of a node through an index of the whole run and filtered every row
of it for each node. Each statement is run here under EXPLAIN ANALYZE (rolled back) on a
fresh database holding a 400-item fan-out, and the rows it read past are counted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from tests.pg import create_pg_database, drop_pg_database

from terrapipe import Workflow, task
from terrapipe.core.states import NodeState
from terrapipe.engines.celery import claims
from terrapipe.store import runstore
from terrapipe.store.db import Database

pytestmark = pytest.mark.postgres

N = 400


@task
def listing(count: int = N) -> list:
    return list(range(count))


@task
def each(item: int) -> int:
    return item


def _fan() -> Workflow:
    wf = Workflow("statements-fan")
    wf.add_node(listing)
    wf.add_node(each, listing, map_over=True)
    return wf


@pytest.fixture
def fresh() -> Iterator[Database]:
    url = create_pg_database("tp_stmt")
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()
        drop_pg_database(url)


def _filtered(plan: dict[str, Any]) -> int:
    """Rows every node of a plan read and dropped ("Rows Removed by Filter"), summed."""
    own = int(plan.get("Rows Removed by Filter", 0))
    return own + sum(_filtered(p) for p in plan.get("Plans", []))


def _explain(conn: sa.Connection, sql: str, params: dict[str, Any]) -> int:
    cursor = conn.connection.driver_connection.cursor()
    cursor.execute("BEGIN")
    try:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        (doc,) = cursor.fetchone()
    finally:
        cursor.execute("ROLLBACK")
    doc = json.loads(doc) if isinstance(doc, str) else doc
    return _filtered(doc[0]["Plan"])


def test_node_statements_read_only_their_rows_on_a_fresh_database(fresh: Database) -> None:
    wf = _fan()
    run_id = uuid.uuid4().hex
    runstore.create_run(
        fresh, id=run_id, workflow=wf.name, workflow_version=wf.version, engine="celery"
    )
    claimed, _ = claims.start_run(fresh, wf, run_id)
    assert claimed == ["listing"]
    with fresh.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = claims.start_node(conn, run_id, "listing", "w:1", 60.0)
        now = claims.utcnow()
        outcome = claims.Outcome(
            node_id=row.id,
            key="listing",
            name="listing",
            map_index=-1,
            state=NodeState.SUCCEEDED,
            reason="no cached result",
            cache_key=None,
            attempts=1,
            error=None,
            error_kind=None,
            traceback=None,
            started_at=now,
            finished_at=now,
            outputs=list(range(N)),
        )
        expanded = claims.finish_node(fresh, conn, wf, run_id, outcome, "w:1")
        assert expanded is not None and len(expanded) == N  # every item queued, once
        with fresh.engine.connect() as check:  # never analyzed: the planner has no stats
            reltuples = check.execute(
                sa.text("SELECT reltuples FROM pg_class WHERE relname = 'nodes'")
            ).scalar()
        assert reltuples < 0

        lease = now + claims.dt.timedelta(seconds=60)
        start = {"p_run": run_id, "p_key": f"each[{N - 1}]", "p_now": now}
        start |= {"p_worker": "w:1", "p_lease": lease}
        assert _explain(conn, claims._START_SQL, start) <= 1

        row = claims.start_node(conn, run_id, "each[0]", "w:1", 60.0)
        assert row is not None and row.key == "each[0]"
        record = claims._outcome_values(outcome) | {"p_id": row.id, "p_worker": "w:1"}
        assert _explain(conn, claims._record_sql(()), record) <= 1
        # open nodes of the run: the first entry of the open-nodes index answers
        assert _explain(conn, claims._STILL_OPEN_SQL, {"p_run": run_id}) <= 1
