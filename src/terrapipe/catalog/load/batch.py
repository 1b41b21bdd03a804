"""The catalog's write path: upserts of dataset batches on each backend, and deferred loads.

:func:`save_batch` upserts one batch inside the caller's transaction: new entries through the
bulk inserts of :mod:`terrapipe.catalog.load.bulk` (SQLite ``executemany``, PostgreSQL binary
``COPY``), stored ones through one Core ``UPDATE`` per batch. :func:`bulk_load` makes a whole
load one transaction and, for a load as large as the catalog, builds the indexes once at the
end (:mod:`terrapipe.catalog.load.deferred`, :mod:`terrapipe.catalog.load.pgstream`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import SaveResult
from terrapipe.catalog.load import bulk
from terrapipe.catalog.load.bulk import DATASET_COLUMNS, META_COLUMNS, URI_COLUMNS, uri_values
from terrapipe.catalog.load.deferred import deferred_indexes
from terrapipe.catalog.load.pgstream import stream_new_datasets
from terrapipe.catalog.models import datasets_table, uris_table
from terrapipe.store.db import Database, json_text

_TIMES = ("time_start", "time_end")


def bulk_load(db: Database, datasets: Iterable[Dataset], batch_size: int) -> SaveResult:
    total = SaveResult()
    with db.begin() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(datasets_table)).scalar()
        if not (isinstance(datasets, Sized) and len(datasets) >= stored):
            for batch in batches(datasets, batch_size):
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
                for batch in batches(datasets, batch_size):
                    total += save_batch(conn, batch, spatial_index=False, known=known)
        for batch in batches(pending, batch_size):  # updates, once the indexes are back
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


def batches(items: Iterable[Dataset], size: int) -> Iterator[list[Dataset]]:
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
