"""Bulk inserts of new datasets on each backend, column by column, bypassing the ORM.

:func:`prepare` normalises the footprints of a batch once (vectorised shapely). SQLite:
``executemany`` of tuples zipped from the columns (the new rowids are consecutive under
the write lock), then the R*Tree boxes in Z-order and the URIs. PostgreSQL: binary
``COPY`` of rows encoded column by column with numpy (:mod:`terrapipe.catalog.load.pgcopy`), the
footprint as EWKB. Both write what the SQLAlchemy column types would (pinned by tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import repeat
from operator import attrgetter
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from terrapipe.catalog import rtree
from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.geometry import footprint_bbox, normalize_footprint
from terrapipe.catalog.load import pgcopy
from terrapipe.errors import InvalidInput, StoreError
from terrapipe.store.db import json_text

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
DEFAULT_ROLE = "data"
URI_COLUMNS = ("dataset_id", "uri", "role", "name", "media_type", "size", "checksum", "local_path")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch of datasets with normalised footprints and their bboxes (NaN: none)."""

    datasets: Sequence[Dataset]
    geoms: np.ndarray
    bounds: np.ndarray
    harvested_at: datetime

    def bbox_columns(self) -> list[list[float | None]]:
        """West, south, east and north as four lists (None where there is no footprint)."""
        columns = self.bounds.T.tolist()
        if np.isnan(self.bounds).any():
            columns = [[None if v != v else v for v in col] for col in columns]
        return columns

    def column(self, name: str) -> list[Any]:
        """One attribute of every dataset."""
        return list(map(attrgetter(name), self.datasets))


def unique_entries(datasets: Sequence[Dataset]) -> list[Dataset]:
    """The datasets, checked, one per ``entry_id`` (the last one wins, in first position)."""
    for d in datasets:
        if not isinstance(d, Dataset):
            raise InvalidInput(f"not a Dataset: {d!r}")
        if not d.entry_id or not isinstance(d.entry_id, str):
            raise InvalidInput(f"invalid entry_id {d.entry_id!r}: must be a non-empty string")
    return list({d.entry_id: d for d in datasets}.values())


def prepare(datasets: Sequence[Dataset]) -> Prepared:
    """Normalise footprints (vectorised; the slow path only where needed) and take bboxes."""
    geoms = np.array([d.footprint for d in datasets], dtype=object)
    bounds = shapely.bounds(geoms)
    suspect = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    suspect |= (bounds[:, 2] - bounds[:, 0] > 180) | (bounds[:, 0] < -180) | (bounds[:, 2] > 180)
    for i in np.flatnonzero(suspect):
        geoms[i] = normalize_footprint(geoms[i])
    bounds = shapely.bounds(geoms)
    for i in np.flatnonzero((bounds[:, 0] <= -180) & (bounds[:, 2] >= 180)):
        bounds[i] = footprint_bbox(geoms[i])
    return Prepared(datasets, geoms, bounds, datetime.now(UTC))


def sqlite_time(value: datetime | None) -> str | None:
    """A datetime as SQLAlchemy stores it on SQLite (UTC, naive, microseconds)."""
    if value is None:
        return None
    if value.tzinfo is not UTC and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # drop the "+00:00"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_NONE = np.iinfo(np.int64).min


def sqlite_times(values: Sequence[datetime | None]) -> list[str | None]:
    """:func:`sqlite_time` of many datetimes at once (numpy formats them: 3x faster)."""
    micros = np.fromiter(
        (
            _NONE
            if v is None
            else (v - (_NAIVE_EPOCH if v.tzinfo is None else _EPOCH)) // _MICROSECOND
            for v in values
        ),
        dtype=np.int64,
        count=len(values),
    )
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us").astype("U26")
    chars = text.view("U1").reshape(-1, 26)
    chars[:, 10] = " "  # ISO 8601's "T" -> SQLAlchemy's space
    out = text.tolist()
    for i in np.flatnonzero(micros == _NONE):
        out[i] = None
    return out


def _sqlite_rows(p: Prepared) -> Iterator[tuple[Any, ...]]:
    ds = p.datasets
    wkb = shapely.to_wkb(p.geoms).tolist()
    return zip(
        *(p.column(name) for name in META_COLUMNS),
        sqlite_times(p.column("time_start")),
        sqlite_times(p.column("time_end")),
        wkb,
        *p.bbox_columns(),
        [json_text(d.properties or {}) for d in ds],
        repeat("ok"),
        repeat(None),
        [None if d.harvest_source is None else json_text(d.harvest_source) for d in ds],
        repeat(sqlite_time(p.harvested_at)),
    )


def _uri_rows(ids: Sequence[int], datasets: Sequence[Dataset]) -> list[tuple[Any, ...]]:
    return [
        (new_id, *uri_values(u)) for new_id, d in zip(ids, datasets, strict=True) for u in d.uris
    ]


def insert_sqlite(conn: Connection, p: Prepared, *, spatial_index: bool = True) -> range:
    """Bulk insert on the driver: datasets, their R*Tree boxes (Z-ordered), their URIs; ids.

    ``spatial_index=False`` leaves the R*Tree to a rebuild at the end of a deferred load.
    """
    cursor = conn.connection.driver_connection.cursor()
    ds = p.datasets
    cols = ", ".join(DATASET_COLUMNS)
    marks = ", ".join("?" for _ in DATASET_COLUMNS)
    cursor.executemany(f"INSERT INTO datasets ({cols}) VALUES ({marks})", _sqlite_rows(p))
    # We hold the write lock for the whole transaction, so the new rowids are consecutive.
    last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
    ids = range(last - len(ds) + 1, last + 1)
    check = dict(
        cursor.execute(
            "SELECT id, entry_id FROM datasets WHERE id IN (?, ?)", (ids[0], ids[-1])
        ).fetchall()
    )
    if check != {ids[0]: ds[0].entry_id, ids[-1]: ds[-1].entry_id}:
        raise StoreError("bulk insert could not determine the new dataset ids")
    if spatial_index:
        cursor.executemany(rtree.INSERT_SQL, rtree.bulk_rows(ids, p.bounds))
    uri_rows = _uri_rows(ids, ds)
    if uri_rows:
        marks = ", ".join("?" for _ in URI_COLUMNS)
        cursor.executemany(
            f"INSERT INTO dataset_uris ({', '.join(URI_COLUMNS)}) VALUES ({marks})", uri_rows
        )
    cursor.close()
    return ids


def _jsonb(value: Any) -> bytes:
    """jsonb's binary wire format: version 1, then the JSON text."""
    return b"\x01" + json_text(value).encode()


def dataset_fields(ids: Sequence[int], p: Prepared) -> list[pgcopy.Field]:
    """The COPY fields of the datasets table, in :data:`DATASET_COLUMNS` order after ``id``."""
    ds, n = p.datasets, len(p.datasets)
    wkb = shapely.to_wkb(p.geoms, byte_order=1).tolist()  # little-endian
    no_bbox = np.isnan(p.bounds[:, 0])
    sources = p.column("harvest_source")
    return [
        pgcopy.int4(np.asarray(ids, dtype=np.int64)),
        *(_text(p.column(name)) for name in META_COLUMNS),
        pgcopy.timestamptz(p.column("time_start")),
        pgcopy.timestamptz(p.column("time_end")),
        pgcopy.raw([None if g is None else ewkb_4326(g) for g in wkb]),
        *(pgcopy.float8(p.bounds[:, j], no_bbox) for j in range(4)),
        pgcopy.raw([_jsonb(d.properties or {}) for d in ds]),
        pgcopy.constant(b"ok", n),
        pgcopy.constant(None, n),
        pgcopy.raw([None if s is None else _jsonb(s) for s in sources]),
        pgcopy.constant(pgcopy.timestamptz([p.harvested_at]).data, n),
    ]


def _text(values: list[str | None]) -> pgcopy.Field:
    """A text field; one encoding for a column with one value (a collection, a platform)."""
    if values and values[0] is not None and values.count(values[0]) == len(values):
        return pgcopy.constant(values[0].encode(), len(values))
    return pgcopy.text(values)


def uri_fields(ids: Sequence[int], datasets: Sequence[Dataset]) -> list[pgcopy.Field]:
    """The COPY fields of the URIs of these datasets, in :data:`URI_COLUMNS` order."""
    counts = np.fromiter((len(d.uris) for d in datasets), dtype=np.int64, count=len(datasets))
    uris = [u for d in datasets for u in d.uris]
    column = [list(map(attrgetter(name), uris)) for name in URI_COLUMNS[1:]]
    uri, role, name, media_type, size, checksum, local_path = column
    return [
        pgcopy.int4(np.repeat(np.asarray(ids, dtype=np.int64), counts)),
        pgcopy.text(uri),
        pgcopy.text([r or DEFAULT_ROLE for r in role]),
        pgcopy.text(name),
        pgcopy.text(media_type),
        pgcopy.int8(size),
        pgcopy.text(checksum),
        pgcopy.text(local_path),
    ]


def new_ids(conn: Connection, n: int) -> Sequence[int]:
    """N fresh ids from the sequence: a range unless other sessions took some meanwhile."""
    low, high, spread = conn.execute(
        sa.text(
            "SELECT min(v), max(v), CASE WHEN max(v) - min(v) + 1 = count(*) THEN NULL "
            "ELSE array_agg(v) END FROM "
            "(SELECT nextval('datasets_id_seq') AS v FROM generate_series(1, :n)) AS s"
        ),
        {"n": n},
    ).one()
    return range(low, high + 1) if spread is None else spread


def copy_postgres(conn: Connection, p: Prepared) -> Sequence[int]:
    """Bulk insert with binary COPY, each batch encoded column-wise with numpy; the ids."""
    ids = new_ids(conn, len(p.datasets))
    cursor = conn.connection.driver_connection.cursor()
    copy_blocks(cursor, "datasets", [pgcopy.encode_rows(dataset_fields(ids, p))])
    copy_blocks(cursor, "dataset_uris", [pgcopy.encode_rows(uri_fields(ids, p.datasets))])
    cursor.close()
    return ids


COPY_COLUMNS = {"datasets": ("id", *DATASET_COLUMNS), "dataset_uris": URI_COLUMNS}


def copy_blocks(cursor: Any, table: str, blocks: Iterable[bytes]) -> None:
    """One binary ``COPY`` into a catalog table: the header, the encoded rows, the trailer."""
    columns = ", ".join(COPY_COLUMNS[table])
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(pgcopy.HEADER)
        for block in blocks:
            copy.write(block)
        copy.write(pgcopy.TRAILER)


def uri_values(u: DatasetURI) -> tuple[Any, ...]:
    """A URI's column values after ``dataset_id`` (role defaults to ``data``)."""
    return (u.uri, u.role or DEFAULT_ROLE, u.name, u.media_type, u.size, u.checksum, u.local_path)


def ewkb_4326(wkb: bytes) -> bytes:
    """EWKB with SRID 4326 (what PostGIS reads in binary COPY) from little-endian WKB."""
    return b"\x01" + _ewkb_header(wkb[1:5]) + wkb[5:]


@cache
def _ewkb_header(kind: bytes) -> bytes:
    flagged = int.from_bytes(kind, "little") | 0x20000000  # "an SRID follows"
    return flagged.to_bytes(4, "little") + (4326).to_bytes(4, "little")
