"""The terrapipe catalog as the DownloadManager's source: search, count, record downloads.

Criteria are the catalog's (``collection="landsat"``, ``id=3``, ``properties__x__lt=2``)
plus ``begin``, ``end``, ``relative`` and ``geometry``, passed to
:func:`terrapipe.catalog.query.search` as its keyword filters.

A download is recorded on the dataset's URIs (``dataset_uris.local_path``) of the file
name that was downloaded; ``save_path=True`` also adds the local file as a ``file://`` URI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from terrapipe.catalog import query
from terrapipe.catalog.dataset import Dataset
from terrapipe.catalog.models import uris_table
from terrapipe.errors import InvalidInput
from terrapipe.store.db import Database, open_database
from terrapipe.transfer.download import RemoteFile, file_name_of
from terrapipe.transfer.fetchers import SCHEMES
from terrapipe.transfer.manager import DatasetRecord

SEARCH_KEYWORDS = query.FILTER_NAMES  # the keywords of search() besides the lookups


def split_criteria(criteria: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(field lookups, search keywords) from one mapping of criteria."""
    keywords = {k: v for k, v in criteria.items() if k in SEARCH_KEYWORDS and v is not None}
    lookups = {k: v for k, v in criteria.items() if k not in SEARCH_KEYWORDS}
    return lookups, keywords


def to_record(dataset: Dataset) -> DatasetRecord:
    """The download view of a catalog dataset: its data URIs in a transferable scheme.

    A URI whose recorded checksum cannot be used makes the record carry that ``problem``:
    the manager reports the dataset (by entry id) and skips it, the others still download.
    """
    remotes, local, problem = [], None, None
    for uri in dataset.uris:
        local = local or uri.local_path
        if uri.role != "data" or uri.uri.split(":", 1)[0].lower() not in SCHEMES:
            continue
        try:
            remotes.append(RemoteFile(uri.uri, size=uri.size, checksum=uri.checksum))
        except InvalidInput as exc:
            problem = problem or f"dataset {dataset.entry_id!r}: {exc}; skipped"
    # a file:// copy saved by save_path is the last resort, after the remote URIs
    remotes.sort(key=lambda r: r.scheme == "file")
    return DatasetRecord(
        key=str(dataset.id),
        name=dataset.entry_id,
        time_start=dataset.time_start,
        remotes=tuple(remotes),
        local_path=local,
        problem=problem,
    )


class CatalogSource:
    """Selects datasets from the catalog database and records where they were downloaded."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def from_settings(cls) -> CatalogSource:
        return cls(open_database())

    def count(self, criteria: dict[str, Any]) -> int:
        lookups, keywords = split_criteria(criteria)
        return query.count(self.db, lookups, **keywords)

    def select(self, criteria: dict[str, Any], limit: int) -> list[DatasetRecord]:
        lookups, keywords = split_criteria(criteria)
        found = query.search(self.db, lookups, limit=max(limit, 1), **keywords)
        return [to_record(d) for d in found]

    def datasets(self, criteria: dict[str, Any], limit: int) -> list[Dataset]:
        """The catalog's own dataset objects (for copy and workflows)."""
        lookups, keywords = split_criteria(criteria)
        return query.search(self.db, lookups, limit=max(limit, 1), **keywords)

    def record_download(self, record: DatasetRecord, path: Path, *, save_path: bool) -> None:
        """Set ``local_path`` on the dataset's URIs of that file; optionally add a file URI."""
        u = uris_table
        local = str(Path(path).resolve())
        uris = [r.uri for r in record.remotes if file_name_of(r.uri) == Path(path).name]
        with self.db.begin() as conn:
            if uris:
                conn.execute(
                    sa.update(u)
                    .where(u.c.dataset_id == int(record.key), u.c.uri.in_(uris))
                    .values(local_path=local)
                )
            if save_path:
                file_uri = Path(local).as_uri()
                exists = conn.execute(
                    sa.select(u.c.id).where(u.c.dataset_id == int(record.key), u.c.uri == file_uri)
                ).first()
                if exists is None:
                    size = Path(local).stat().st_size
                    conn.execute(
                        sa.insert(u).values(
                            dataset_id=int(record.key),
                            uri=file_uri,
                            role="data",
                            name=Path(local).name,
                            size=size,
                            local_path=local,
                        )
                    )
                else:
                    conn.execute(sa.update(u).where(u.c.id == exists.id).values(local_path=local))

    def clear_download(self, dataset_id: int | str) -> None:
        """Forget where a dataset was downloaded (after its files were removed)."""
        u = uris_table
        with self.db.begin() as conn:
            conn.execute(
                sa.update(u).where(u.c.dataset_id == int(dataset_id)).values(local_path=None)
            )
