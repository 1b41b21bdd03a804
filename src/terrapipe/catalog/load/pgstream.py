"""A deferred bulk load on PostgreSQL as one ``COPY`` stream per table.

Inside :func:`terrapipe.catalog.load.deferred.deferred_indexes` nothing needs the database
between rows: the stored entry ids are known up front, the new ids come from one sequence
allocation, and updates of stored entries wait until the indexes are back. So all new
datasets go into a single ``COPY datasets``, encoded with numpy a small chunk at a time:
the server digests one chunk while the client encodes the next (the loopback socket holds
several). Their URIs are spooled and copied in one stream after it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from typing import IO

import numpy as np
from sqlalchemy.engine import Connection

from terrapipe.catalog.dataset import Dataset
from terrapipe.catalog.load import bulk, pgcopy

STREAM_ROWS = 2000  # datasets per encoded chunk: ~650 kB, a fraction of the socket buffers
SPOOL_MEMORY = 64 << 20  # encoded URI rows kept in memory before spilling to a temp file
_READ = 1 << 20


def stream_new_datasets(
    conn: Connection, datasets: Sequence[Dataset], known: dict[str, int]
) -> tuple[int, list[Dataset]]:
    """COPY every dataset whose entry id is not in ``known`` (adding it there).

    Returns how many were added and, in order, the datasets that update a stored entry
    (or one added earlier in this load): the caller applies those once indexes are back.
    """
    pending: list[Dataset] = []
    all_ids = _as_array(bulk.new_ids(conn, len(datasets)))
    added = 0

    def dataset_blocks(uris: IO[bytes]) -> Iterator[bytes]:
        """The new datasets' rows a chunk at a time; their URIs' rows go to ``uris``."""
        nonlocal added
        for first in range(0, len(datasets), STREAM_ROWS):
            chunk = bulk.unique_entries(datasets[first : first + STREAM_ROWS])
            new = [d for d in chunk if d.entry_id not in known]
            pending.extend(d for d in chunk if d.entry_id in known)
            if not new:
                continue
            ids = all_ids[added : added + len(new)]
            added += len(new)
            known.update(zip((d.entry_id for d in new), ids.tolist(), strict=True))
            yield pgcopy.encode_rows(bulk.dataset_fields(ids, bulk.prepare(new)))
            uris.write(pgcopy.encode_rows(bulk.uri_fields(ids, new)))

    cursor = conn.connection.driver_connection.cursor()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as uris:
        bulk.copy_blocks(cursor, "datasets", dataset_blocks(uris))
        uris.seek(0)
        bulk.copy_blocks(cursor, "dataset_uris", iter(lambda: uris.read(_READ), b""))
    cursor.close()
    return added, pending


def _as_array(ids: Sequence[int]) -> np.ndarray:
    if isinstance(ids, range):
        return np.arange(ids.start, ids.stop, dtype=np.int64)
    return np.asarray(ids, dtype=np.int64)
