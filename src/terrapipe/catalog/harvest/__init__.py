"""Harvest datasets into the catalog from a folder, a static STAC catalog or a STAC API.

Public API::

    harvest(db, source, *, collection=None, search=None, max_depth=3, progress=None)
        -> HarvestReport
    retry_failed(db, *, progress=None) -> HarvestReport

``source`` is a folder, a STAC JSON file or URL, a STAC API URL (``search`` holds the
pystac-client search parameters, e.g. ``{"collections": ["c"], "datetime": "2024"}``),
or a directory listing: an HTTP(S) index page or an ``ftp://`` folder, crawled at most
``max_depth`` folders deep (:mod:`terrapipe.catalog.harvest.listing`).
Harvesting is idempotent: the same ``entry_id`` updates its dataset. Items are saved in
batches, one transaction each (a batch that fails in the database is retried item by
item), so nothing is half-inserted. Unreadable items are kept with status ``failed`` and
their error; :func:`retry_failed` reads them again. ``progress(done, total)`` is called
as items are processed (``total`` is None when unknown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from terrapipe.catalog.dataset import Dataset, without_userinfo
from terrapipe.catalog.harvest import folder, listing, stac
from terrapipe.catalog.harvest.report import Failure, HarvestReport
from terrapipe.catalog.ingest import record_failure, save_batch
from terrapipe.catalog.models import datasets_table
from terrapipe.errors import HarvestError
from terrapipe.store.db import Database

__all__ = ["Failure", "HarvestReport", "harvest", "retry_failed"]

Progress = Callable[[int, int | None], None]
BATCH_SIZE = 500


def harvest(
    db: Database,
    source: str | Path,
    *,
    collection: str | None = None,
    search: Mapping[str, Any] | None = None,
    max_depth: int = listing.DEFAULT_DEPTH,
    progress: Progress | None = None,
) -> HarvestReport:
    """Harvest every item of ``source`` into the catalog and report the counts."""
    if collection is not None and (not isinstance(collection, str) or not collection.strip()):
        raise HarvestError(f"invalid collection {collection!r}: must be a non-empty name")
    text = str(source)
    shown = without_userinfo(text)
    if text.lower().startswith("ftp://"):
        kind = "listing"
        total, items = listing.iter_listing(text, collection=collection, max_depth=max_depth)
    elif text.startswith(("http://", "https://")):
        if stac.open_api(text) is not None:
            report = HarvestReport(source=shown, kind="stac-api")
            items = stac.iter_api(text, collection=collection, search=search)
            return _run(db, items, report, None, progress)
        if listing.is_listing(text):
            kind = "listing"
            total, items = listing.iter_listing(text, collection=collection, max_depth=max_depth)
        else:
            kind, items, total = "stac", stac.iter_static(text, collection=collection), None
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise HarvestError(f"harvest source not found: {text!r}")
        if path.is_dir():
            files = folder.folder_files(path)
            kind, total = "folder", len(files)
            items = (folder.harvest_file(f, collection=collection) for f in files)
        else:
            kind, items, total = (
                "stac",
                stac.iter_static(str(path.resolve()), collection=collection),
                None,
            )
    if search:
        raise HarvestError(f"search parameters apply to a STAC API only, not to {text!r}")
    return _run(db, items, HarvestReport(source=shown, kind=kind), total, progress)


def retry_failed(db: Database, *, progress: Progress | None = None) -> HarvestReport:
    """Read every failed item again from where it came from; report what now works."""
    t = datasets_table
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(t.c.entry_id, t.c.harvest_source)
            .where(t.c.harvest_status == "failed")
            .order_by(t.c.id)
        ).all()
    report = HarvestReport(source="failed items", kind="retry")
    items = (_retry_one(entry_id, source or {}) for entry_id, source in rows)
    return _run(db, items, report, len(rows), progress, replaced=True)


def _retry_one(entry_id: str, source: dict[str, Any]) -> tuple[str, Dataset | Failure]:
    kind, collection = source.get("kind"), source.get("collection")
    if kind == "file" and source.get("path"):
        return entry_id, folder.harvest_file(Path(source["path"]), collection=collection)
    if kind == "listing_file" and source.get("url"):
        return entry_id, listing.harvest_url(source["url"], collection=collection)
    if kind in ("stac_item", "stac_catalog") and source.get("href"):
        if kind == "stac_catalog":
            return entry_id, Failure(entry_id, "a STAC catalog failed: harvest it again", source)
        return entry_id, stac.read_item(source["href"], collection=collection)
    if source.get("api") and source.get("id"):
        search = {"ids": [source["id"]]}
        if source.get("item_collection"):
            search["collections"] = [source["item_collection"]]
        try:
            found = list(stac.iter_api(source["api"], collection=collection, search=search))
        except HarvestError as exc:
            return entry_id, Failure(entry_id, str(exc), source)
        if found:
            return entry_id, found[0]
        return entry_id, Failure(entry_id, "the STAC API no longer has this item", source)
    return entry_id, Failure(entry_id, "no source recorded to retry from", source)


def _run(
    db: Database,
    items: Iterable[Any],
    report: HarvestReport,
    total: int | None,
    progress: Progress | None,
    *,
    replaced: bool = False,
) -> HarvestReport:
    """Save datasets in batches and record failures; ``replaced`` items are (old_id, item)."""
    batch: list[tuple[str | None, Dataset]] = []
    try:
        for done, entry in enumerate(items, start=1):
            old_id, item = entry if replaced else (None, entry)
            if isinstance(item, Failure):
                _fail(db, report, item)
            else:
                batch.append((old_id, item))
            if len(batch) >= BATCH_SIZE:
                _flush(db, batch, report)
                batch = []
            if progress:
                progress(done, total)
    except HarvestError:  # the source broke off (e.g. a STAC API page): keep what was read
        _flush(db, batch, report)
        raise
    _flush(db, batch, report)
    return report


def _fail(db: Database, report: HarvestReport, failure: Failure) -> None:
    record_failure(
        db,
        failure.entry_id,
        failure.error,
        source=failure.source,
        title=failure.title,
        collection=failure.collection,
    )
    report.failed += 1
    report.failures.append(failure)


def _flush(db: Database, batch: list[tuple[str | None, Dataset]], report: HarvestReport) -> None:
    if not batch:
        return
    try:
        with db.begin() as conn:
            result = save_batch(conn, [d for _, d in batch])
            _drop_replaced(conn, batch)
    except Exception:  # a database error in the batch: isolate it item by item
        for old_id, dataset in batch:
            try:
                with db.begin() as conn:
                    one = save_batch(conn, [dataset])
                    _drop_replaced(conn, [(old_id, dataset)])
            except Exception as exc:
                _fail(
                    db,
                    report,
                    Failure(
                        dataset.entry_id,
                        f"cannot store: {exc}",
                        dataset.harvest_source,
                        dataset.title,
                        dataset.collection,
                    ),
                )
            else:
                report.added += one.added
                report.updated += one.updated
        return
    report.added += result.added
    report.updated += result.updated


def _drop_replaced(conn: Any, batch: list[tuple[str | None, Dataset]]) -> None:
    """A retried item stored under a new entry_id replaces its old failed record."""
    t = datasets_table
    stale = [old for old, d in batch if old is not None and old != d.entry_id]
    if stale:
        conn.execute(sa.delete(t).where(t.c.entry_id.in_(stale), t.c.harvest_status == "failed"))
