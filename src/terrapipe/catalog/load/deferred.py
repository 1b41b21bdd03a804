"""Deferred index builds for large catalog loads: drop, load, build each index once.

Keeping a B-tree, a GiST or the R*Tree up to date row by row costs more than building
it from sorted data at the end once a load is about as large as what is stored (the
PostgreSQL and SQLite manuals both advise it for bulk loads; GDAL bulk-loads GeoPackage
R*Trees the same way). Everything happens inside the caller's transaction, so a failed
load rolls the dropped indexes back with the rows: readers never see a catalog without
its indexes. On SQLite the unique ``entry_id`` index stays: upserts look entries up by it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from sqlalchemy.engine import Connection

from terrapipe.catalog import rtree
from terrapipe.catalog.load import rtree_pack
from terrapipe.errors import StoreError

log = logging.getLogger(__name__)

TABLES = ("datasets", "dataset_uris")
SQLITE_CACHE_KIB = 256 * 1024  # page cache for the load: index pages stay in memory
PG_MAINTENANCE_WORK_MEM = "256MB"  # sort memory for the index builds of this transaction


@contextmanager
def deferred_indexes(conn: Connection) -> Iterator[None]:
    """Drop the catalog's secondary (and spatial) indexes; rebuild them when the block ends.

    On SQLite new rows must skip the R*Tree (``save_batch(..., spatial_index=False)``): it
    is rebuilt packed from every stored bbox at the end.
    """
    if conn.dialect.name == "sqlite":
        with _sqlite_deferred(conn):
            yield
    elif conn.dialect.name == "postgresql":
        with _postgres_deferred(conn):
            yield
    else:  # pragma: no cover - other backends keep their indexes
        yield


@contextmanager
def _sqlite_deferred(conn: Connection) -> Iterator[None]:
    raw = conn.connection.driver_connection
    if not raw.in_transaction:  # the driver begins lazily, only before DML: DDL comes first
        raw.execute("BEGIN IMMEDIATE")
    marks = ", ".join("?" for _ in TABLES)
    indexes = raw.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks}) ORDER BY name",
        TABLES,
    ).fetchall()
    cache = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        for name, _ in indexes:
            raw.execute(f'DROP INDEX "{name}"')
        yield
        for _, sql in indexes:
            raw.execute(sql)
        rebuild_sqlite_rtree(conn)
    finally:
        raw.execute(f"PRAGMA cache_size = {int(cache)}")


def rebuild_sqlite_rtree(conn: Connection) -> None:
    """Rebuild the R*Tree, packed, from the bbox columns of every stored dataset."""
    cursor = conn.connection.driver_connection.cursor()
    rows = cursor.execute(
        "SELECT id, bbox_west, bbox_south, bbox_east, bbox_north FROM datasets "
        "WHERE bbox_west IS NOT NULL"
    )
    table = np.fromiter(itertools.chain.from_iterable(rows), dtype=float).reshape(-1, 5)
    rowids, boxes = rtree.box_arrays(table[:, 0].astype(np.int64), table[:, 1:])
    try:
        rtree_pack.rebuild(cursor, rtree.TABLE, rowids, boxes)
    except StoreError as exc:  # e.g. shadow tables read-only (SQLITE_DBCONFIG_DEFENSIVE)
        log.warning("packed R*Tree build failed (%s): inserting the boxes one by one", exc)
        cursor.execute(f"DELETE FROM {rtree.TABLE}")
        boxes_rows = zip(rowids.tolist(), *boxes.T.tolist(), strict=True)
        cursor.executemany(rtree.INSERT_SQL, boxes_rows)
    cursor.close()


@contextmanager
def _postgres_deferred(conn: Connection) -> Iterator[None]:
    """Every index and constraint of the catalog tables, dropped and built again at the end.

    Only the COPY stream of :mod:`terrapipe.catalog.load.pgstream` writes in between: it needs
    no index (entry ids are known up front), and uniqueness and references are checked
    once when the constraints are added back (a violation rolls the whole load back).
    """
    raw = conn.connection.driver_connection
    cursor = raw.cursor()
    tables = list(TABLES)
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = ANY(CAST(%s AS regclass[])) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1",
        (tables,),
    )
    indexes = cursor.fetchall()
    # Keys and unique constraints of the tables, then the foreign keys from or to them.
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype IN ('p', 'u') "
        "AND conrelid = ANY(CAST(%s AS regclass[])) ORDER BY contype, 2",
        (tables,),
    )
    keys = cursor.fetchall()
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype = 'f' AND (conrelid = ANY(CAST(%s AS regclass[])) "
        "OR confrelid = ANY(CAST(%s AS regclass[]))) ORDER BY 2",
        (tables, tables),
    )
    foreign_keys = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    for table, name, _ in (*foreign_keys, *keys):
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    yield
    cursor.execute(f"SET LOCAL maintenance_work_mem = '{PG_MAINTENANCE_WORK_MEM}'")
    for table, name, definition in keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for _, definition in indexes:
        cursor.execute(definition)
    for table, name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    cursor.close()
