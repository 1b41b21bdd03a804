"""``Database.pinned``: a thread's statements on one connection, with the same transactions
as without it (each read sees what was committed before it, a failed write leaves
nothing), and other threads untouched."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from terrapipe.store import runstore
from terrapipe.store.runstore import runs_t


def _checkouts(db) -> list[int]:
    """A list that grows by one at every connection checkout from ``db``'s pool."""
    seen: list[int] = []
    event.listen(db.engine, "checkout", lambda *_: seen.append(1))
    return seen


def _run(run_id: str) -> dict:
    return {
        "id": run_id,
        "workflow": "w",
        "workflow_version": "1",
        "engine": "local",
        "created_at": runstore.utcnow(),
    }


def test_statements_inside_share_one_checkout(db) -> None:
    run_id = uuid.uuid4().hex
    runstore.create_run(db, **_run(run_id), state="queued")
    seen = _checkouts(db)
    with db.pinned():
        assert runstore.claim_queued(db, run_id)
        assert runstore.get_run_row(db, run_id)["state"] == "running"
        assert not runstore.cancel_requested(db, run_id)
        runstore.update_run(db, run_id, state="succeeded")
    assert len(seen) == 1
    runstore.get_run_row(db, run_id)
    assert len(seen) == 2  # outside, a checkout per statement again


def test_a_read_inside_sees_a_commit_made_by_another_connection_after_the_last_read(db) -> None:
    run_id = uuid.uuid4().hex
    runstore.create_run(db, **_run(run_id), state="queued")
    with db.pinned():
        assert runstore.get_run_row(db, run_id)["state"] == "queued"
        with db.engine.begin() as other:  # another connection commits meanwhile
            other.execute(
                runs_t.update().where(runs_t.c.id == run_id).values(cancel_requested=True)
            )
        assert runstore.cancel_requested(db, run_id)  # no snapshot kept from the first read


def test_a_failed_write_inside_leaves_nothing_and_the_connection_goes_on(db) -> None:
    kept, lost = uuid.uuid4().hex, uuid.uuid4().hex
    with db.pinned():
        with pytest.raises(RuntimeError), db.begin() as conn:
            conn.execute(runs_t.insert().values(**_run(lost), state="queued"))
            raise RuntimeError("the write fails half way")
        runstore.create_run(db, **_run(kept), state="queued")
    with db.engine.connect() as conn:
        ids = set(conn.execute(sa.select(runs_t.c.id)).scalars())
    assert kept in ids and lost not in ids


def test_writes_inside_are_committed_when_their_block_ends_not_when_the_pin_does(db) -> None:
    run_id = uuid.uuid4().hex
    with db.pinned():
        runstore.create_runs(db, [{**_run(run_id), "state": "queued"}])  # write_polling path
        with db.engine.connect() as other:  # visible to another connection already
            assert other.execute(sa.select(runs_t.c.state)).scalar() == "queued"


def test_a_nested_block_joins_the_open_write(db) -> None:
    run_id = uuid.uuid4().hex
    with db.pinned(), pytest.raises(RuntimeError), db.begin() as conn:
        conn.execute(runs_t.insert().values(**_run(run_id), state="queued"))
        with db.connect() as inner:  # reads the outer write's own row
            assert inner.execute(sa.select(runs_t.c.id)).scalar() == run_id
        raise RuntimeError("the outer write fails")
    assert runstore.get_run_row(db, run_id) is None  # the inner read did not commit it


def test_other_threads_are_not_pinned(db) -> None:
    run_id = uuid.uuid4().hex
    runstore.create_run(db, **_run(run_id), state="queued")
    seen = _checkouts(db)
    with db.pinned():
        runstore.get_run_row(db, run_id)
        other = threading.Thread(target=runstore.get_run_row, args=(db, run_id))
        other.start()
        other.join()
        runstore.get_run_row(db, run_id)
    assert len(seen) == 2  # this thread's one, and the other thread's own
