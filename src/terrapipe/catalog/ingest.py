"""Write datasets into the catalog: batched upserts by ``entry_id`` and failure records.

:func:`save_datasets` is the one write path (harvesters and bulk loads use it). Each batch
is one transaction: existing entries are updated, new ones inserted in bulk (SQLite
``executemany`` on the driver, PostgreSQL ``COPY``), so nothing is ever half-inserted.
``bulk_load=True`` makes the whole load one transaction and, for a load as large as the
catalog, builds the indexes once at the end (:mod:`terrapipe.catalog.load`).
Downloaded state of a URI (``local_path``, ``checksum``) survives a re-harvest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from terrapipe.catalog.dataset import Dataset
from terrapipe.catalog.models import datasets_table, uris_table
from terrapipe.errors import DatasetNotFound, InvalidInput
from terrapipe.store.db import Database

DEFAULT_BATCH = 5000


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
    from terrapipe.catalog.load import batch as write  # the write path, loaded on first use

    total = SaveResult()
    try:
        if bulk_load:
            return write.bulk_load(db, datasets, batch_size)
        for batch in write.batches(datasets, batch_size):
            with db.begin() as conn:
                total += write.save_batch(conn, batch)
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


def save_batch(
    conn: Connection,
    datasets: Sequence[Dataset],
    *,
    spatial_index: bool = True,
    known: dict[str, int] | None = None,
) -> SaveResult:
    """Upsert one batch inside the caller's transaction (the last duplicate entry wins);
    see :func:`terrapipe.catalog.load.batch.save_batch`."""
    from terrapipe.catalog.load import batch as write

    return write.save_batch(conn, datasets, spatial_index=spatial_index, known=known)


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
