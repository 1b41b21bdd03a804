"""The run store on SQLite and PostgreSQL: migrations, batched recorder, cache upserts."""

from __future__ import annotations

import datetime as dt
import gc
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa

from terrapipe.settings import get_settings
from terrapipe.store import runstore
from terrapipe.store.db import BUSY_TIMEOUT_MS, Database, open_database


def test_migrations_create_core_tables_and_reopen_is_idempotent(db: Database) -> None:
    tables = set(sa.inspect(db.engine).get_table_names())
    assert {"runs", "nodes", "cache_entries", "artifacts", "alembic_version"} <= tables
    again = Database(db.url)
    assert set(sa.inspect(again.engine).get_table_names()) == tables
    again.dispose()


def test_recorder_batches_inserts_then_updates(db: Database) -> None:
    runstore.create_run(
        db, id="r1", workflow="wf", workflow_version="1", params={}, engine="local", force=False
    )
    rec = runstore.RunRecorder(db, "r1")
    base = {
        "name": "a",
        "map_index": -1,
        "item_id": None,
        "task_name": "a",
        "task_version": "1",
        "reason": None,
        "cache_key": None,
        "attempts": 0,
        "error": None,
        "traceback": None,
        "started_at": None,
        "finished_at": None,
    }
    rec.node({**base, "key": "a", "state": "pending"})
    rec.node({**base, "key": "a", "state": "running"})  # same key before a flush: one insert
    rec.node({**base, "key": "b", "name": "b", "state": "pending"})
    rec.flush()
    rows = {r["key"]: r for r in runstore.node_rows(db, "r1")}
    assert {k: r["state"] for k, r in rows.items()} == {"a": "running", "b": "pending"}
    now = dt.datetime.now(dt.UTC)
    rec.cache_entry(
        {
            "key": "k1",
            "task_name": "a",
            "task_version": "1",
            "components": {"x": 1},
            "outputs": {"v": 1},
            "artifact_dir": None,
            "run_id": "r1",
            "created_at": now,
        },
        [],
    )
    rec.node({**base, "key": "a", "state": "succeeded", "cache_key": "k1", "attempts": 1})
    rec.run(state="succeeded", progress=1.0)
    rec.flush()
    rows = {r["key"]: r for r in runstore.node_rows(db, "r1")}
    assert rows["a"]["state"] == "succeeded" and rows["a"]["outputs"] == {"v": 1}
    assert runstore.get_run_row(db, "r1")["state"] == "succeeded"
    # a forced rerun of the same key replaces the entry instead of failing on the key
    rec.cache_entry(
        {
            "key": "k1",
            "task_name": "a",
            "task_version": "1",
            "components": {"x": 1},
            "outputs": {"v": 2},
            "artifact_dir": None,
            "run_id": "r1",
            "created_at": now,
        },
        [],
    )
    rec.flush()
    assert runstore.cache_row(db, "k1")["outputs"] == {"v": 2}


def test_run_id_prefix_lookup(db: Database) -> None:
    for rid in ("abc111", "abc222", "def333"):
        runstore.create_run(
            db, id=rid, workflow="w", workflow_version="1", params={}, engine="local", force=False
        )
    assert runstore.get_run_row(db, "def")["id"] == "def333"
    assert runstore.get_run_row(db, "abc") is None  # ambiguous
    assert runstore.get_run_row(db, "zzz") is None


def test_safe_url_masks_password() -> None:
    db = Database("postgresql://user:s3cret@127.0.0.1:1/none", migrate=False)
    assert "s3cret" not in db.safe_url and "***" in db.safe_url
    db.dispose()


def test_sweep_removes_only_old_staging_debris(tmp_path) -> None:
    import os
    import time

    from terrapipe.store.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path / "artifacts")
    old = store.staging_root / "crashed-node"
    new = store.staging_root / "running-node"
    for d in (old, new):
        d.mkdir(parents=True)
        (d / "part.tif").write_text("x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    assert store.sweep() == 1
    assert not old.exists() and new.exists()


def _hold_write_lock(
    path: str, seconds: float, held: threading.Event, released: list[float]
) -> None:
    """Another process's writer, as far as SQLite can tell: its own connection holding the
    write lock for ``seconds``; ``released`` gets the monotonic time it starts to commit."""
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    con.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    released.append(time.monotonic())  # before: nobody can take the lock earlier
    con.execute("COMMIT")
    con.close()


def _locked_for(path: str, seconds: float) -> tuple[threading.Thread, list[float]]:
    """A thread holding the write lock of ``path`` for ``seconds``, once it holds it, and
    the list its release time goes into."""
    held, released = threading.Event(), []
    holder = threading.Thread(target=_hold_write_lock, args=(path, seconds, held, released))
    holder.start()
    assert held.wait(5)
    return holder, released


def _table(tmp_path) -> tuple[Database, str]:
    db = open_database(get_settings(home=tmp_path))
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    return db, db.engine.url.database


def _count(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one()


def test_write_polling_takes_the_lock_soon_after_its_release(tmp_path) -> None:
    db, path = _table(tmp_path)
    lags = []
    for _ in range(3):  # best of three: one scheduling hiccup of a loaded CI machine is noise
        holder, released = _locked_for(path, 0.2)
        gc.disable()  # a full collection of the suite's heap would be counted as lag
        try:
            db.write_polling(lambda conn: conn.execute(sa.text("INSERT INTO t VALUES (1)")))
            acquired = time.monotonic()
        finally:
            gc.enable()
        holder.join()
        assert acquired >= released[0]  # it did wait for the holder
        lags.append(acquired - released[0])
    # SQLite's own busy handler sleeps up to 100 ms between tries (about 28 ms after a
    # 200 ms hold, more after longer ones); polling gets the lock within a few ms
    assert min(lags) < 0.015, lags
    assert _count(db) == 3
    with db.engine.connect() as conn:  # the pooled connection waits as before
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == BUSY_TIMEOUT_MS
    db.dispose()


def test_write_polling_gives_up_after_its_timeout_and_rolls_back_on_error(tmp_path) -> None:
    db, path = _table(tmp_path)
    holder, _ = _locked_for(path, 0.5)
    insert = sa.text("INSERT INTO t VALUES (1)")
    with pytest.raises(sa.exc.OperationalError, match="locked"):
        db.write_polling(lambda conn: conn.execute(insert), timeout=0.1)
    holder.join()

    def fails(conn) -> None:
        conn.execute(sa.text("INSERT INTO t VALUES (2)"))
        raise ValueError("the work failed")

    with pytest.raises(ValueError):
        db.write_polling(fails)
    assert _count(db) == 0
    db.dispose()
