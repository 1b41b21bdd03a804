"""Write datasets into the catalog: batched upserts by ``entry_id`` and failure records.

:func:`save_datasets` is the one write path (harvesters and bulk loads use it). Each batch
is one transaction: existing entries are updated, new ones inserted in bulk (SQLite
``executemany`` on the driver, PostgreSQL ``COPY``), so nothing is ever half-inserted.
``bulk_load=True`` makes the whole load one transaction and, for a load as large as the
catalog, builds the indexes once at the end (:mod:`terrapipe.catalog.deferred`).
Downloaded state of a URI (``local_path``, ``checksum``) survives a re-harvest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from terrapipe.catalog import bulk
from terrapipe.catalog.bulk import (
    DATASET_COLUMNS,
    META_COLUMNS,
    URI_COLUMNS,
    uri_values,
)
from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.deferred import deferred_indexes
from terrapipe.catalog.models import datasets_table, uris_table
from terrapipe.catalog.pgstream import stream_new_datasets
from terrapipe.errors import DatasetNotFound, InvalidInput
from terrapipe.store.db import Database, json_text

DEFAULT_BATCH = 5000

_TIMES = ("time_start", "time_end")


@dataclass(frozen=True, slots=True)
class SaveResult:
    """How many datasets a save added and how many it updated."""

    added: int = 0
    updated: int = 0

    def __add__(self, other: SaveResult) -> SaveResult:
        return SaveResult(self.added + other.added, self.updated + other.updated)


def save_datasets(
    db: Database,
    datasets: Iterable[Dataset],
    *,
    batch_size: int = DEFAULT_BATCH,
    bulk_load: bool = False,
) -> SaveResult:
    """Insert or update (by ``entry_id``) datasets, one transaction per batch.

    ``bulk_load=True`` makes the whole load one transaction (all or nothing; it holds the
    write lock throughout) and, when ``datasets`` has a length at least the number of
    stored datasets, drops the secondary and spatial indexes and builds them once at the
    end: several times faster for large loads (see docs/catalog.md).
    """
    if batch_size < 1:
        raise InvalidInput(f"invalid batch_size {batch_size!r}: must be >= 1")
    total = SaveResult()
    try:
        if bulk_load:
            return _bulk_load(db, datasets, batch_size)
        for batch in _batches(datasets, batch_size):
            with db.begin() as conn:
                total += save_batch(conn, batch)
    except Exception as exc:
        refused = _refused_value(exc)
        if refused is None:
            raise
        raise refused from exc
    return total


def _refused_value(exc: Exception) -> InvalidInput | None:
    """A value the database refused (too long, a NUL character...) as bad input, or None."""
    error = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if not type(error).__module__.startswith("psycopg"):
        return None
    import psycopg

    if not isinstance(error, psycopg.DataError):
        return None
    lines = str(error).strip().splitlines()
    where = next((line.split(":", 1)[1].strip() for line in lines if "CONTEXT" in line), "")
    return InvalidInput(
        f"a dataset value was refused by the database: {lines[0]}"
        + (f" ({where})" if where else "")
        + "; fix that value and save again (nothing of this transaction was stored)"
    )


def _bulk_load(db: Database, datasets: Iterable[Dataset], batch_size: int) -> SaveResult:
    total = SaveResult()
    with db.begin() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(datasets_table)).scalar()
        if not (isinstance(datasets, Sized) and len(datasets) >= stored):
            for batch in _batches(datasets, batch_size):
                total += save_batch(conn, batch)
            return total
        # As large as the catalog or larger: every stored entry id fits in memory as well,
        # so one scan replaces a lookup per batch, and the indexes are built at the end.
        t = datasets_table
        known = {e: i for e, i in conn.execute(sa.select(t.c.entry_id, t.c.id))}
        pending: list[Dataset] = []
        with deferred_indexes(conn):
            if conn.dialect.name == "postgresql":
                added, pending = stream_new_datasets(conn, datasets, known)
                total += SaveResult(added=added)
            else:
                for batch in _batches(datasets, batch_size):
                    total += save_batch(conn, batch, spatial_index=False, known=known)
        for batch in _batches(pending, batch_size):  # updates, once the indexes are back
            total += save_batch(conn, batch, known=known)
    return total


def save_batch(
    conn: Connection,
    datasets: Sequence[Dataset],
    *,
    spatial_index: bool = True,
    known: dict[str, int] | None = None,
) -> SaveResult:
    """Upsert one batch inside the caller's transaction (the last duplicate entry wins).

    ``spatial_index=False``: new rows skip the SQLite R*Tree (a deferred load rebuilds it).
    ``known``: every stored ``entry_id -> id`` (kept up to date here), instead of a query.
    """
    unique = bulk.unique_entries(datasets)
    if not unique:
        return SaveResult()
    if known is None:
        existing = _existing_ids(conn, [d.entry_id for d in unique])
    else:
        existing = {d.entry_id: known[d.entry_id] for d in unique if d.entry_id in known}
    new = [d for d in unique if d.entry_id not in existing]
    old = [d for d in unique if d.entry_id in existing]
    if new:
        ids = _insert_new(conn, bulk.prepare(new), spatial_index=spatial_index)
        if known is not None:
            known.update(zip((d.entry_id for d in new), ids, strict=True))
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


def record_download(
    db: Database,
    uri_id: int,
    *,
    local_path: str,
    checksum: str | None = None,
    size: int | None = None,
) -> None:
    """Note where a dataset URI was downloaded to (and its checksum/size once known)."""
    if not isinstance(local_path, str) or not local_path:
        raise InvalidInput(f"invalid local_path {local_path!r}: must be a non-empty path")
    values: dict[str, Any] = {"local_path": local_path}
    if checksum is not None:
        values["checksum"] = checksum
    if size is not None:
        values["size"] = size
    with db.begin() as conn:
        done = conn.execute(sa.update(uris_table).where(uris_table.c.id == uri_id).values(values))
        if done.rowcount != 1:
            raise DatasetNotFound(f"no dataset URI with id {uri_id!r}")


def _batches(items: Iterable[Dataset], size: int) -> Iterator[list[Dataset]]:
    batch: list[Dataset] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _row_dicts(p: bulk.Prepared) -> list[dict[str, Any]]:
    """Column values of each dataset (footprint as WKB) for the ORM update path."""
    wkb = shapely.to_wkb(p.geoms).tolist()
    west, south, east, north = p.bbox_columns()
    return [
        {
            **{name: getattr(d, name) for name in (*META_COLUMNS, *_TIMES)},
            "footprint": wkb[i],
            "bbox_west": west[i],
            "bbox_south": south[i],
            "bbox_east": east[i],
            "bbox_north": north[i],
            "properties": d.properties or {},
            "harvest_status": "ok",
            "harvest_error": None,
            "harvest_source": d.harvest_source,
            "harvested_at": p.harvested_at,
        }
        for i, d in enumerate(p.datasets)
    ]


def _existing_ids(conn: Connection, entry_ids: list[str]) -> dict[str, int]:
    """Ids of the entry ids already stored: one joined lookup, linear on both backends."""
    if conn.dialect.name == "postgresql":
        query = sa.text(
            "SELECT d.entry_id, d.id FROM jsonb_array_elements_text(CAST(:ids AS jsonb)) "
            "AS u(e) JOIN datasets d ON d.entry_id = u.e"
        )
        return {e: i for e, i in conn.execute(query, {"ids": json_text(entry_ids)})}
    if conn.dialect.name == "sqlite":
        query = sa.text(
            "SELECT entry_id, id FROM datasets "
            "WHERE entry_id IN (SELECT value FROM json_each(:ids))"
        )
        return {e: i for e, i in conn.execute(query, {"ids": json_text(entry_ids)})}
    t = datasets_table  # pragma: no cover - other backends
    query = sa.select(t.c.entry_id, t.c.id).where(t.c.entry_id.in_(entry_ids))
    return {e: i for e, i in conn.execute(query)}


def _insert_new(conn: Connection, p: bulk.Prepared, *, spatial_index: bool) -> Sequence[int]:
    """Insert new datasets; their ids, in order."""
    if conn.dialect.name == "postgresql":
        return bulk.copy_postgres(conn, p)
    if conn.dialect.name == "sqlite":
        return bulk.insert_sqlite(conn, p, spatial_index=spatial_index)
    return _insert_new_core(conn, p)  # pragma: no cover - other backends


def _insert_new_core(conn: Connection, p: bulk.Prepared) -> list[int]:  # pragma: no cover
    """Plain Core inserts, a row at a time, for backends without a bulk path."""
    ids = []
    for d, row in zip(p.datasets, _row_dicts(p), strict=True):
        values = {k: row[k] for k in DATASET_COLUMNS}
        new_id = conn.execute(
            sa.insert(datasets_table).values(**values).returning(datasets_table.c.id)
        ).scalar_one()
        _insert_uris_core(conn, new_id, d.uris, {})
        ids.append(new_id)
    return ids


def _insert_uris_core(
    conn: Connection, dataset_id: int, uris: Sequence[DatasetURI], kept: dict[str, Any]
) -> None:
    rows = []
    for u in uris:
        prior = kept.get((dataset_id, u.uri))
        rows.append(
            dict(
                zip(URI_COLUMNS, (dataset_id, *uri_values(u)), strict=True),
                checksum=u.checksum or (prior.checksum if prior else None),
                local_path=u.local_path or (prior.local_path if prior else None),
            )
        )
    if rows:
        conn.execute(sa.insert(uris_table), rows)


def _update_existing(conn: Connection, old: list[Dataset], existing: dict[str, int]) -> None:
    t, u = datasets_table, uris_table
    items = list(zip(old, _row_dicts(bulk.prepare(old)), strict=True))
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
