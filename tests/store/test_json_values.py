"""Values come back from the cache exactly as the task returned them, on both backends.

SQLite gives a column declared ``JSON`` NUMERIC affinity, which turned stored JSON text
that reads as a number into a number (``20.0`` -> ``20``, a 20-digit int -> a float);
migration 0011 gives those columns TEXT affinity.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from terrapipe import Workflow, submit, task
from terrapipe.store.db import Database

VALUES = {
    "whole_float": 20.0,
    "big_int": 12345678901234567891,
    "negative_zero": -0.0,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "digits": "0042",
    "numeric_text": "1e5",
    "true": True,
    "nested": {"a": [1.0, 2, "3"]},
}


def _workflow() -> Workflow:
    wf = Workflow("json-values")
    for name, value in VALUES.items():
        wf.add_node(task(_returning(value), name=name))
    return wf


def _returning(value):
    def make():
        return value

    return make


@pytest.mark.usefixtures("db_url")
def test_cached_outputs_keep_their_type_and_value(db: Database) -> None:
    wf = _workflow()
    first = submit(wf, db=db)
    again = submit(wf, db=db)
    outputs = {i.name: (i.state.value, i.outputs) for i in again.instances}
    for name, value in VALUES.items():
        state, got = outputs[name]
        assert state == "cached", name
        assert got == value and type(got) is type(value), (name, got)
    assert str(outputs["negative_zero"][1]) == "-0.0"
    assert {i.name: i.state.value for i in first.instances} == dict.fromkeys(VALUES, "succeeded")


def test_upgrade_forgets_entries_sqlite_had_turned_into_numbers(tmp_path: Path) -> None:
    """A database at 0010 with a number-stored output: after the upgrade that entry is gone
    (it is recomputed), a text-stored one is kept, and no artifact row is lost."""
    from alembic import command
    from alembic.config import Config

    from terrapipe.store.db import MIGRATIONS_DIR

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url, migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010_core_open_nodes_index")
    db.dispose()
    raw = sqlite3.connect(tmp_path / "old.db")
    now = "2026-01-01 00:00:00.000000"
    for key, outputs in (("k_number", "20.0"), ("k_text", '"20.0"')):
        raw.execute(
            "INSERT INTO cache_entries (key, task_name, task_version, components, outputs,"
            " created_at) VALUES (?, 't', '1', '{}', ?, ?)",
            (key, outputs, now),
        )
        raw.execute(
            "INSERT INTO artifacts (cache_key, path, size, created_at) VALUES (?, 'f.txt', 1, ?)",
            (key, now),
        )
    raw.commit()
    assert raw.execute("SELECT typeof(outputs) FROM cache_entries ORDER BY key").fetchall() == [
        ("integer",),  # NUMERIC affinity at work: the text 20.0 was stored as 20
        ("text",),
    ]
    raw.close()
    upgraded = Database(url)
    with upgraded.engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT key, outputs FROM cache_entries")).all()
        files = conn.execute(sa.text("SELECT cache_key FROM artifacts")).all()
        conn.execute(
            sa.text(
                "INSERT INTO cache_entries (key, task_name, task_version, components, outputs,"
                " created_at) VALUES ('k_new', 't', '1', '{}', '20.0', :now)"
            ),
            {"now": now},
        )
        stored = conn.execute(
            sa.text("SELECT typeof(outputs), outputs FROM cache_entries WHERE key = 'k_new'")
        ).one()
    assert kept == [("k_text", '"20.0"')]
    assert files == [("k_text",)]
    assert tuple(stored) == ("text", "20.0")
    upgraded.dispose()
