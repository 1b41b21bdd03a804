"""The job runner's look for work reads the partial index of queued runs, oldest first."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from terrapipe.store import runstore


def _runs(db, host: str, pid: int, states: list[str]) -> list[dict]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [
        {
            "id": uuid.uuid4().hex,
            "workflow": "w",
            "workflow_version": "1",
            "params": {"i": i},
            "engine": "local",
            "state": state,
            "owner_host": host,
            "owner_pid": pid,
            "created_at": start + dt.timedelta(seconds=(i * 7919) % 1000),  # not in order
        }
        for i, state in enumerate(states)
    ]
    runstore.create_runs(db, rows)
    return rows


def test_the_oldest_queued_runs_of_one_runner_from_the_index(db) -> None:
    mine = _runs(db, "here", 11, ["queued", "running", "succeeded", "queued"] * 100)
    _runs(db, "here", 12, ["queued"] * 100)  # another runner's
    _runs(db, "there", 11, ["queued"] * 100)  # the same pid on another host
    expected = sorted((r for r in mine if r["state"] == "queued"), key=lambda r: r["created_at"])
    got = runstore.queued_owned_runs(db, "here", 11, limit=7)
    assert [r["params"] for r in got] == [r["params"] for r in expected[:7]]
    sql = str(runstore._QUEUED_OWNED.compile(db.engine))
    with db.engine.connect() as conn:
        if db.is_sqlite:
            plan = " ".join(
                str(r[-1])
                for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ("here", 11, 7, 0))
            )
            assert "ix_runs_queued_owner" in plan and "TEMP B-TREE" not in plan, plan
        else:
            conn.execute(sa.text("ANALYZE runs"))
            conn.execute(sa.text("SET enable_seqscan = off"))
            plan = " ".join(
                r[0]
                for r in conn.execute(
                    sa.text(
                        "EXPLAIN "
                        + sql.replace("%(host)s", "'here'")
                        .replace("%(pid)s", "11")
                        .replace("%(limit)s", "7")
                    )
                )
            )
            assert "ix_runs_queued_owner" in plan, plan
