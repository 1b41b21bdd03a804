"""Shared fixtures: an isolated TERRAPIPE_HOME, and databases on SQLite and real PostgreSQL.

PostgreSQL: one throw-away database per test session (with PostGIS), every table truncated
before each test that uses it. Nothing touches the server's own `test` database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.pg import create_pg_database, drop_pg_database


@pytest.fixture(autouse=True)
def tp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own TERRAPIPE_HOME and the default (SQLite) database."""
    home = tmp_path / "tphome"
    monkeypatch.setenv("TERRAPIPE_HOME", str(home))
    monkeypatch.delenv("TERRAPIPE_DATABASE_URL", raising=False)
    monkeypatch.delenv("TERRAPIPE_REDIS_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database with PostGIS for this test session; dropped afterwards."""
    try:
        url = create_pg_database("tp_test", postgis=True)
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable (run `make services`): {exc}")
    yield url
    drop_pg_database(url)


def _truncate_all(url: str) -> None:
    from terrapipe.store.db import Database

    db = Database(url)  # migrates on first use
    tables = [
        t
        for t in sa.inspect(db.engine).get_table_names()
        if t not in ("alembic_version", "spatial_ref_sys")
    ]
    if tables:
        with db.begin() as conn:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tp_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database URL of this test, once for SQLite and once for PostgreSQL.

    Also exported as TERRAPIPE_DATABASE_URL so code that opens the database from settings
    uses the same one.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tp_home / 'terrapipe.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
        _truncate_all(url)
    monkeypatch.setenv("TERRAPIPE_DATABASE_URL", url)
    return url


@pytest.fixture
def db(db_url: str):
    from terrapipe.store.db import Database

    database = Database(db_url)
    yield database
    database.dispose()


CliResult = tuple[int, str, str]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the ``terrapipe`` command in-process: ``cli("run", "demo")`` -> (code, out, err),
    with the same error handling and exit codes as the console script."""
    from terrapipe.cli.main import main

    def run(*args: str) -> CliResult:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run
