"""Bulk inserts of new datasets on each backend, bypassing per-row ORM work.

SQLite: ``executemany`` on the driver (the new rowids are consecutive under the write
lock), then the R*Tree boxes in Z-order and the URIs. PostgreSQL: ``COPY``
in binary format through psycopg's C dumpers (the footprint as EWKB).
Both write exactly what the SQLAlchemy column types would (pinned by tests).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from terrapipe.catalog import rtree
from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.errors import StoreError

META_COLUMNS = ("entry_id", "title", "collection", "platform", "instrument", "provider")
BBOX_COLUMNS = ("bbox_west", "bbox_south", "bbox_east", "bbox_north")
_HARVEST = ("harvest_status", "harvest_error", "harvest_source", "harvested_at")
DATASET_COLUMNS = (
    *META_COLUMNS,
    "time_start",
    "time_end",
    "footprint",
    *BBOX_COLUMNS,
    "properties",
    *_HARVEST,
)
URI_COLUMNS = ("dataset_id", "uri", "role", "name", "media_type", "size", "checksum", "local_path")
Items = list[tuple[Dataset, dict[str, Any]]]


def sqlite_time(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy stores it on SQLite (UTC, naive, microseconds)."""
    if value is None:
        return None
    d = value.astimezone(UTC) if value.tzinfo is not None else value
    return d.isoformat(" ", "microseconds")[:26]  # drop the "+00:00"


def _sqlite_tuple(row: dict[str, Any], now: str | None) -> tuple[Any, ...]:
    source = row["harvest_source"]
    return (
        row["entry_id"],
        row["title"],
        row["collection"],
        row["platform"],
        row["instrument"],
        row["provider"],
        sqlite_time(row["time_start"]),
        sqlite_time(row["time_end"]),
        row["footprint"],
        row["bbox_west"],
        row["bbox_south"],
        row["bbox_east"],
        row["bbox_north"],
        json.dumps(row["properties"]),
        "ok",
        None,
        json.dumps(source) if source is not None else None,
        now,
    )


def insert_sqlite(conn: Connection, items: Items) -> None:
    """Bulk insert on the driver: datasets, their R*Tree boxes (Z-ordered), their URIs."""
    cursor = conn.connection.driver_connection.cursor()
    now = sqlite_time(items[0][1]["harvested_at"])
    cols = ", ".join(DATASET_COLUMNS)
    marks = ", ".join("?" for _ in DATASET_COLUMNS)
    cursor.executemany(
        f"INSERT INTO datasets ({cols}) VALUES ({marks})",
        [_sqlite_tuple(r, now) for _, r in items],
    )
    # We hold the write lock for the whole transaction, so the new rowids are consecutive.
    last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
    ids = list(range(last - len(items) + 1, last + 1))
    check = dict(
        cursor.execute(
            "SELECT id, entry_id FROM datasets WHERE id IN (?, ?)", (ids[0], ids[-1])
        ).fetchall()
    )
    if check != {ids[0]: items[0][0].entry_id, ids[-1]: items[-1][0].entry_id}:
        raise StoreError("bulk insert could not determine the new dataset ids")
    bounds = np.array(
        [[r[b] if r[b] is not None else np.nan for b in BBOX_COLUMNS] for _, r in items],
        dtype=float,
    )
    cursor.executemany(rtree.INSERT_SQL, rtree.bulk_rows(ids, bounds))
    uri_rows = [
        (new_id, *uri_values(u)) for new_id, (d, _) in zip(ids, items, strict=True) for u in d.uris
    ]
    if uri_rows:
        marks = ", ".join("?" for _ in URI_COLUMNS)
        cursor.executemany(
            f"INSERT INTO dataset_uris ({', '.join(URI_COLUMNS)}) VALUES ({marks})", uri_rows
        )
    cursor.close()


DATASET_COPY_TYPES = (
    "int4",
    *(["varchar", "text"] + ["varchar"] * 4),
    "timestamptz",
    "timestamptz",
    "geometry",
    *(["float8"] * 4),
    "jsonb",
    "varchar",
    "text",
    "jsonb",
    "timestamptz",
)
URI_COPY_TYPES = ("int4", "text", "varchar", "varchar", "varchar", "int8", "varchar", "text")


class _EWKB(bytes):
    """EWKB bytes sent as a PostGIS geometry in binary COPY."""


def _geometry_dumper(oid: int) -> type:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class GeometryDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: bytes) -> bytes:
            return obj

    GeometryDumper.oid = oid
    return GeometryDumper


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def copy_postgres(conn: Connection, items: Items) -> None:
    """Bulk insert with binary COPY (psycopg's C dumpers; the footprint as EWKB)."""
    from psycopg.types import TypeInfo
    from psycopg.types.json import Jsonb

    ids = (
        conn.execute(
            sa.text("SELECT nextval('datasets_id_seq') FROM generate_series(1, :n)"),
            {"n": len(items)},
        )
        .scalars()
        .all()
    )
    raw = conn.connection.driver_connection
    geometry = TypeInfo.fetch(raw, "geometry")
    if geometry is None:
        raise StoreError("the PostGIS geometry type is missing (CREATE EXTENSION postgis)")
    cursor = raw.cursor()
    geometry.register(cursor)
    cursor.adapters.register_dumper(_EWKB, _geometry_dumper(geometry.oid))
    columns = ", ".join(("id", *DATASET_COLUMNS))
    with cursor.copy(f"COPY datasets ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(DATASET_COPY_TYPES)
        for new_id, (_, r) in zip(ids, items, strict=True):
            footprint, source = r["footprint"], r["harvest_source"]
            copy.write_row(
                (
                    new_id,
                    *map(r.__getitem__, META_COLUMNS),
                    _utc(r["time_start"]),
                    _utc(r["time_end"]),
                    _EWKB(ewkb(footprint)) if footprint is not None else None,
                    *map(r.__getitem__, BBOX_COLUMNS),
                    Jsonb(r["properties"]),
                    "ok",
                    None,
                    Jsonb(source) if source is not None else None,
                    r["harvested_at"],
                )
            )
    with cursor.copy(
        f"COPY dataset_uris ({', '.join(URI_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(URI_COPY_TYPES)
        for new_id, (d, _) in zip(ids, items, strict=True):
            for u in d.uris:
                copy.write_row((new_id, *uri_values(u)))
    cursor.close()


def uri_values(u: DatasetURI) -> tuple[Any, ...]:
    return (u.uri, u.role or "data", u.name, u.media_type, u.size, u.checksum, u.local_path)


def ewkb(wkb: bytes, srid: int = 4326) -> bytes:
    """EWKB (what PostGIS reads in binary COPY) from ISO WKB, adding the SRID."""
    order = "little" if wkb[0] == 1 else "big"
    kind = int.from_bytes(wkb[1:5], order) | 0x20000000
    return wkb[:1] + kind.to_bytes(4, order) + srid.to_bytes(4, order) + wkb[5:]
