"""Write datasets into the catalog: batched upserts by ``entry_id`` and failure records.

:func:`save_datasets` is the one write path (harvesters and bulk loads use it). Each batch
is one transaction: existing entries are updated, new ones inserted in bulk (SQLite
``executemany`` on the driver, PostgreSQL ``COPY``), so nothing is ever half-inserted.
Downloaded state of a URI (``local_path``, ``checksum``) survives a re-harvest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from terrapipe.catalog import rtree
from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.geometry import footprint_bbox, normalize_footprint
from terrapipe.catalog.models import datasets_table, uris_table
from terrapipe.errors import InvalidInput, StoreError
from terrapipe.store.db import Database

DEFAULT_BATCH = 5000

_META = ("entry_id", "title", "collection", "platform", "instrument", "provider")
_TIMES = ("time_start", "time_end")
_BBOX = ("bbox_west", "bbox_south", "bbox_east", "bbox_north")
_HARVEST = ("harvest_status", "harvest_error", "harvest_source", "harvested_at")
DATASET_COLUMNS = (*_META, *_TIMES, "footprint", *_BBOX, "properties", *_HARVEST)
URI_COLUMNS = ("dataset_id", "uri", "role", "name", "media_type", "size", "checksum", "local_path")


@dataclass(frozen=True, slots=True)
class SaveResult:
    """How many datasets a save added and how many it updated."""

    added: int = 0
    updated: int = 0

    def __add__(self, other: SaveResult) -> SaveResult:
        return SaveResult(self.added + other.added, self.updated + other.updated)


def save_datasets(
    db: Database, datasets: Iterable[Dataset], *, batch_size: int = DEFAULT_BATCH
) -> SaveResult:
    """Insert or update (by ``entry_id``) datasets, one transaction per batch."""
    if batch_size < 1:
        raise InvalidInput(f"invalid batch_size {batch_size!r}: must be >= 1")
    total = SaveResult()
    for batch in _batches(datasets, batch_size):
        with db.begin() as conn:
            total += save_batch(conn, batch)
    return total


def save_batch(conn: Connection, datasets: Sequence[Dataset]) -> SaveResult:
    """Upsert one batch inside the caller's transaction (the last duplicate entry wins)."""
    unique = list({d.entry_id: d for d in _checked(datasets)}.values())
    if not unique:
        return SaveResult()
    rows = _rows(unique)
    existing = _existing_ids(conn, [d.entry_id for d in unique])
    new = [(d, r) for d, r in zip(unique, rows, strict=True) if d.entry_id not in existing]
    old = [(d, r) for d, r in zip(unique, rows, strict=True) if d.entry_id in existing]
    if new:
        _insert_new(conn, new)
    if old:
        _update_existing(conn, old, existing)
    return SaveResult(added=len(new), updated=len(old))


def record_failure(
    db: Database,
    entry_id: str,
    error: str,
    *,
    source: dict[str, Any] | None = None,
    title: str | None = None,
    collection: str | None = None,
) -> None:
    """Keep a failed item (status ``failed`` with its error) so it can be retried later."""
    now = datetime.now(UTC)
    values = {
        "harvest_status": "failed",
        "harvest_error": error,
        "harvest_source": source,
        "harvested_at": now,
    }
    with db.begin() as conn:
        found = conn.execute(
            sa.select(datasets_table.c.id).where(datasets_table.c.entry_id == entry_id)
        ).scalar()
        if found is not None:
            conn.execute(
                sa.update(datasets_table).where(datasets_table.c.id == found).values(**values)
            )
        else:
            conn.execute(
                sa.insert(datasets_table).values(
                    entry_id=entry_id, title=title, collection=collection, properties={}, **values
                )
            )


def _batches(items: Iterable[Dataset], size: int) -> Iterator[list[Dataset]]:
    batch: list[Dataset] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _checked(datasets: Sequence[Dataset]) -> Sequence[Dataset]:
    for d in datasets:
        if not isinstance(d, Dataset):
            raise InvalidInput(f"not a Dataset: {d!r}")
        if not d.entry_id or not isinstance(d.entry_id, str):
            raise InvalidInput(f"invalid entry_id {d.entry_id!r}: must be a non-empty string")
    return datasets


def _footprints(datasets: Sequence[Dataset]) -> tuple[list[Any], np.ndarray]:
    """Normalised footprints and their bboxes; vectorised, slow path only where needed."""
    geoms = np.array([d.footprint for d in datasets], dtype=object)
    bounds = shapely.bounds(geoms)
    suspect = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    suspect |= (bounds[:, 2] - bounds[:, 0] > 180) | (bounds[:, 0] < -180) | (bounds[:, 2] > 180)
    for i in np.flatnonzero(suspect):
        geoms[i] = normalize_footprint(geoms[i])
    bounds = shapely.bounds(geoms)
    for i in np.flatnonzero((bounds[:, 0] <= -180) & (bounds[:, 2] >= 180)):
        bounds[i] = footprint_bbox(geoms[i])
    return list(geoms), bounds


def _rows(datasets: Sequence[Dataset]) -> list[dict[str, Any]]:
    """Column values of each dataset (footprint as WKB), plus its URIs under ``_uris``."""
    geoms, bounds = _footprints(datasets)
    wkb = shapely.to_wkb(np.array(geoms, dtype=object))
    now = datetime.now(UTC)
    rows = []
    for i, d in enumerate(datasets):
        has_geom = geoms[i] is not None
        row = {name: getattr(d, name) for name in (*_META, *_TIMES)}
        row.update(
            footprint=wkb[i] if has_geom else None,
            properties=d.properties or {},
            harvest_status="ok",
            harvest_error=None,
            harvest_source=d.harvest_source,
            harvested_at=now,
        )
        for j, name in enumerate(_BBOX):
            row[name] = float(bounds[i, j]) if has_geom else None
        row["_uris"] = d.uris
        rows.append(row)
    return rows


def _existing_ids(conn: Connection, entry_ids: list[str]) -> dict[str, int]:
    """Ids of the entry ids already stored: one joined lookup, linear on both backends."""
    if conn.dialect.name == "postgresql":
        query = sa.text(
            "SELECT d.entry_id, d.id FROM unnest(CAST(:ids AS text[])) AS u(e) "
            "JOIN datasets d ON d.entry_id = u.e"
        )
        return {e: i for e, i in conn.execute(query, {"ids": entry_ids})}
    if conn.dialect.name == "sqlite":
        query = sa.text(
            "SELECT entry_id, id FROM datasets "
            "WHERE entry_id IN (SELECT value FROM json_each(:ids))"
        )
        return {e: i for e, i in conn.execute(query, {"ids": json.dumps(entry_ids)})}
    t = datasets_table  # pragma: no cover - other backends
    query = sa.select(t.c.entry_id, t.c.id).where(t.c.entry_id.in_(entry_ids))
    return {e: i for e, i in conn.execute(query)}


def _insert_new(conn: Connection, items: list[tuple[Dataset, dict[str, Any]]]) -> None:
    if conn.dialect.name == "postgresql":
        _copy_new_postgres(conn, items)
    elif conn.dialect.name == "sqlite":
        _insert_new_sqlite(conn, items)
    else:  # pragma: no cover - other backends go through plain Core
        _insert_new_core(conn, items)


def _sqlite_time(value: datetime | None) -> str | None:
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
        _sqlite_time(row["time_start"]),
        _sqlite_time(row["time_end"]),
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


def _insert_new_sqlite(conn: Connection, items: list[tuple[Dataset, dict[str, Any]]]) -> None:
    """Bulk insert on the driver: datasets, their R*Tree boxes (Z-ordered), their URIs."""
    cursor = conn.connection.driver_connection.cursor()
    now = _sqlite_time(items[0][1]["harvested_at"])
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
        [[r[b] if r[b] is not None else np.nan for b in _BBOX] for _, r in items], dtype=float
    )
    cursor.executemany(rtree.INSERT_SQL, rtree.bulk_rows(ids, bounds))
    uri_rows = [
        (new_id, *_uri_values(u)) for new_id, (d, _) in zip(ids, items, strict=True) for u in d.uris
    ]
    if uri_rows:
        marks = ", ".join("?" for _ in URI_COLUMNS)
        cursor.executemany(
            f"INSERT INTO dataset_uris ({', '.join(URI_COLUMNS)}) VALUES ({marks})", uri_rows
        )
    cursor.close()


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escaped(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_COPY_ESCAPES)
    return text


def _copy_text(value: Any) -> str:
    """One value in PostgreSQL COPY text format (NULL is \\N)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, datetime):
        return value.isoformat() if value.tzinfo else value.isoformat() + "+00:00"
    if isinstance(value, dict | list):
        return _escaped(json.dumps(value))
    return str(value)


def _copy_line(new_id: int, row: dict[str, Any], now: str) -> str:
    """One ``datasets`` row in COPY text format, specialised per column for speed."""
    footprint = row["footprint"]
    source = row["harvest_source"]
    start, end = row["time_start"], row["time_end"]
    return "\t".join(
        (
            str(new_id),
            *[_escaped(v) if v is not None else "\\N" for v in map(row.__getitem__, _META)],
            _copy_text(start) if start is not None else "\\N",
            _copy_text(end) if end is not None else "\\N",
            ewkb_hex(footprint) if footprint is not None else "\\N",
            *[repr(v) if v is not None else "\\N" for v in map(row.__getitem__, _BBOX)],
            _escaped(json.dumps(row["properties"])),
            "ok",
            "\\N",
            _escaped(json.dumps(source)) if source is not None else "\\N",
            now,
        )
    )


def _copy_new_postgres(conn: Connection, items: list[tuple[Dataset, dict[str, Any]]]) -> None:
    """Bulk insert with COPY (text format built here: much faster than per-value adapters)."""
    ids = (
        conn.execute(
            sa.text("SELECT nextval('datasets_id_seq') FROM generate_series(1, :n)"),
            {"n": len(items)},
        )
        .scalars()
        .all()
    )
    cursor = conn.connection.driver_connection.cursor()
    columns = ("id", *DATASET_COLUMNS)
    now = _copy_text(items[0][1]["harvested_at"])
    lines = (_copy_line(new_id, row, now) for new_id, (_, row) in zip(ids, items, strict=True))
    _copy(cursor, f"COPY datasets ({', '.join(columns)}) FROM STDIN", lines)
    uri_lines = (
        "\t".join(_copy_text(v) for v in (new_id, *_uri_values(u)))
        for new_id, (d, _) in zip(ids, items, strict=True)
        for u in d.uris
    )
    _copy(cursor, f"COPY dataset_uris ({', '.join(URI_COLUMNS)}) FROM STDIN", uri_lines)
    cursor.close()


def _copy(cursor: Any, statement: str, lines: Iterable[str], chunk: int = 2000) -> None:
    """Stream lines to COPY in chunks, so the server works while the next chunk is built."""
    with cursor.copy(statement) as copy:
        buffer: list[str] = []
        for line in lines:
            buffer.append(line)
            if len(buffer) >= chunk:
                copy.write("\n".join(buffer) + "\n")
                buffer = []
        if buffer:
            copy.write("\n".join(buffer) + "\n")


def _insert_new_core(conn: Connection, items: list[tuple[Dataset, dict[str, Any]]]) -> None:
    for d, row in items:
        values = {k: row[k] for k in DATASET_COLUMNS}
        new_id = conn.execute(
            sa.insert(datasets_table).values(**values).returning(datasets_table.c.id)
        ).scalar_one()
        _insert_uris_core(conn, new_id, d.uris, {})


def _uri_values(u: DatasetURI) -> tuple[Any, ...]:
    return (u.uri, u.role or "data", u.name, u.media_type, u.size, u.checksum, u.local_path)


def _insert_uris_core(
    conn: Connection, dataset_id: int, uris: Sequence[DatasetURI], kept: dict[str, Any]
) -> None:
    rows = []
    for u in uris:
        prior = kept.get((dataset_id, u.uri))
        rows.append(
            dict(
                zip(URI_COLUMNS, (dataset_id, *_uri_values(u)), strict=True),
                checksum=u.checksum or (prior.checksum if prior else None),
                local_path=u.local_path or (prior.local_path if prior else None),
            )
        )
    if rows:
        conn.execute(sa.insert(uris_table), rows)


def _update_existing(
    conn: Connection, items: list[tuple[Dataset, dict[str, Any]]], existing: dict[str, int]
) -> None:
    t, u = datasets_table, uris_table
    names = [c for c in DATASET_COLUMNS if c != "entry_id"]
    statement = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("_id"))
        .values({name: sa.bindparam(f"_{name}", type_=t.c[name].type) for name in names})
    )
    params = [{"_id": existing[d.entry_id], **{f"_{n}": row[n] for n in names}} for d, row in items]
    conn.execute(statement, params)
    ids = [existing[d.entry_id] for d, _ in items]
    kept = {
        (r.dataset_id, r.uri): r
        for r in conn.execute(
            sa.select(u.c.dataset_id, u.c.uri, u.c.checksum, u.c.local_path).where(
                u.c.dataset_id.in_(ids)
            )
        )
    }
    conn.execute(sa.delete(u).where(u.c.dataset_id.in_(ids)))
    for d, _ in items:
        _insert_uris_core(conn, existing[d.entry_id], d.uris, kept)


def ewkb_hex(wkb: bytes, srid: int = 4326) -> str:
    """Hex EWKB (what PostGIS reads in COPY text) from ISO WKB, adding the SRID."""
    order = "little" if wkb[0] == 1 else "big"
    kind = int.from_bytes(wkb[1:5], order) | 0x20000000
    return (wkb[:1] + kind.to_bytes(4, order) + srid.to_bytes(4, order) + wkb[5:]).hex()
