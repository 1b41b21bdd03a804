"""The one database: engine, sessions and migrations, for SQLite and PostgreSQL.

A :class:`Database` is opened per process or per request and passed down; there is no
module-level engine. Opening one runs any pending Alembic migrations (every area of
terrapipe adds its own migration on its own branch; we upgrade to all ``heads``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from terrapipe.errors import StoreError
from terrapipe.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x7E44A91
BUSY_TIMEOUT_MS = 30000  # how long an SQLite statement waits for a lock before failing
T = TypeVar("T")  # advisory lock id of terrapipe migrations on PostgreSQL


class Base(DeclarativeBase):
    """Declarative base of every terrapipe table."""


TABLES_GROUP = "terrapipe.tables"  # entry points: each area's module of tables


def load_tables() -> sa.MetaData:
    """Every area's tables on :class:`Base` (the ``terrapipe.tables`` entry points, the
    run store's own first), for code that needs the complete metadata (migrations)."""
    import importlib
    import importlib.metadata

    importlib.import_module("terrapipe.store.models")
    for ep in importlib.metadata.entry_points(group=TABLES_GROUP):
        importlib.import_module(ep.value)
    return Base.metadata


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def json_text(value: Any) -> str:
    """JSON text for every JSON column and bulk path: orjson (NaN as null, datetimes as ISO
    8601), the stdlib's error for what neither can encode."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def create_sa_engine(url: str) -> Engine:
    """An SQLAlchemy engine with the settings terrapipe needs on each backend."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=json_text,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_serializer=json_text
    )


class Database:
    """An open terrapipe database: ``engine`` for Core, ``session()`` for the ORM."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = create_sa_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._pin = threading.local()  # the connection a thread holds inside pinned()
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Inside, this thread's :meth:`connect`, :meth:`begin` and :meth:`write_polling`
        use one connection checked out once, not one per statement: a one-node job makes
        half a dozen short statements, and the pool's checkout, reset and checkin of each
        cost more than SQLite running it. Nested, the outer pin holds."""
        if getattr(self._pin, "conn", None) is not None:
            yield
            return
        with self.engine.connect() as conn:
            self._pin.conn = conn
            try:
                yield
            finally:
                self._pin.conn = None
                if conn.in_transaction():
                    conn.rollback()

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A Core connection for reads: its transaction ends when the block does (inside
        an open :meth:`begin` of a pinned thread, the block reads in that transaction)."""
        conn = getattr(self._pin, "conn", None)
        if conn is None:
            with self.engine.connect() as fresh:
                yield fresh
            return
        if conn.in_transaction():  # a read inside this thread's write: part of it
            yield conn
            return
        try:
            yield conn
        finally:
            if conn.in_transaction():
                conn.rollback()  # a read: end its snapshot, the connection is reused

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A Core connection in one transaction: committed on success, rolled back on
        error (inside an open one of a pinned thread, part of that one)."""
        conn = getattr(self._pin, "conn", None)
        if conn is None:
            with self.engine.begin() as fresh:
                yield fresh
            return
        if conn.in_transaction():
            yield conn
            return
        with conn.begin():
            yield conn

    def write_polling(
        self, work: Callable[[Connection], T], *, poll: float = 0.0005, timeout: float = 30.0
    ) -> T:
        """``work(conn)`` in one write transaction that, on SQLite, asks for the write lock
        every ``poll`` seconds (``BEGIN IMMEDIATE``) instead of waiting in SQLite's busy
        handler, whose back-off grows to 100 ms between tries: against a process that
        commits many short transactions (the job runner), a waiter in that handler keeps
        losing the lock and sleeping longer. On PostgreSQL, a plain transaction."""
        if not self.is_sqlite:
            with self.begin() as conn:
                return work(conn)
        deadline = time.monotonic() + timeout
        pinned = getattr(self._pin, "conn", None)
        if pinned is not None and pinned.in_transaction():  # inside this thread's write
            return work(pinned)
        with self.connect() as conn:
            driver = conn.connection.driver_connection
            driver.execute("PRAGMA busy_timeout=0")
            try:
                while True:
                    try:
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                        break
                    except sa.exc.OperationalError as exc:
                        conn.rollback()
                        if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                            raise
                        time.sleep(poll)
                try:
                    result = work(conn)
                    conn.commit()
                    return result
                except BaseException:
                    conn.rollback()
                    raise
            finally:
                driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def migrate(self) -> None:
        """Bring the schema to the newest revision of every migration branch.

        Several processes may open a new database at once: migrations run under a lock (a
        file lock next to a SQLite file, an advisory lock on PostgreSQL) and the version is
        checked again once the lock is held.
        """
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        heads = set(ScriptDirectory.from_config(cfg).get_heads())

        def current(conn: Connection) -> set[str]:
            return set(MigrationContext.configure(conn).get_current_heads())

        try:
            with self.engine.connect() as conn:
                if current(conn) == heads:
                    return
            with self._migration_lock(), self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                if current(conn) == heads:
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the database {self.safe_url}: {exc.orig}") from exc

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        database = self.engine.url.database if self.is_sqlite else None
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, fit for messages and logs."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


def open_database(settings: Settings | None = None) -> Database:
    """Open (and migrate) the database the settings point at."""
    settings = settings or get_settings()
    return Database(settings.sqlalchemy_url)
