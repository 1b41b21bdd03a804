"""Search the dataset catalog by attributes, time and geometry.

Public API (all take an open :class:`terrapipe.store.Database` first)::

    search(db, criteria=None, *, begin=None, end=None, relative=None, geometry=None,
           limit=100, offset=0) -> list[Dataset]
    count(db, criteria=None, *, begin=None, end=None, relative=None, geometry=None) -> int
    get_dataset(db, id_or_entry_id) -> Dataset            # raises DatasetNotFound

- ``criteria``: Django-style lookups, e.g. ``{"collection": "landsat",
  "instrument__iexact": "oli", "properties__cloud_cover__lt": 20}`` (see
  :mod:`terrapipe.catalog.lookups` for fields and operators). Unknown fields or operators
  raise :class:`~terrapipe.errors.QueryError` listing the valid ones.
- time: datasets whose ``[time_start, time_end]`` overlaps ``[begin, end]`` (either bound
  may be open; a missing ``time_end`` means an instant), or the last ``relative`` span
  (``"7d"``, ``"12h"``). Datasets without a time never match a time filter.
- ``geometry``: WKT, GeoJSON, ``"minx,miny,maxx,maxy"`` (``minx > maxx`` crosses the
  antimeridian) or a shapely geometry in EPSG:4326; matches footprints intersecting it.
  SQLite: R*Tree on the bbox, then an exact shapely test on the candidates only;
  PostgreSQL: ``ST_Intersects`` on the GiST-indexed PostGIS column.
- Results are :class:`~terrapipe.catalog.dataset.Dataset` objects with their URIs,
  ordered by ``time_start`` (datasets without a time last), then ``id``.
- Only successfully harvested datasets are returned unless ``harvest_status`` appears
  in the criteria (``{"harvest_status": "failed"}`` lists the failed ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypedDict, Unpack

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from terrapipe.catalog.dataset import IDENTITY_FIELDS, Dataset, DatasetURI, footprint_from_wkb
from terrapipe.catalog.geometry import bbox_boxes, footprint_bbox, parse_geometry
from terrapipe.catalog.lookups import INT64, build_conditions, parse_key
from terrapipe.catalog.models import RTREE_TABLE, datasets_table, uris_table
from terrapipe.catalog.timespan import time_window
from terrapipe.errors import DatasetNotFound, InvalidInput, QueryError
from terrapipe.store.db import Database

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "count", "get_dataset", "search"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
_EXACT_FUNCTION = "tp_footprint_intersects"

_rtree = sa.table(
    RTREE_TABLE,
    sa.column("id", sa.Integer),
    sa.column("minx", sa.Float),
    sa.column("maxx", sa.Float),
    sa.column("miny", sa.Float),
    sa.column("maxy", sa.Float),
)


class Filters(TypedDict, total=False):
    """The filters :func:`search` and :func:`count` take besides ``criteria``.

    ``begin``/``end``: the time range (datetimes or ISO 8601 text); ``relative``: a span
    back from now (``7d``, ``12h``); ``geometry``: a shapely geometry, WKT, GeoJSON or a
    ``minx,miny,maxx,maxy`` bbox, in EPSG:4326.
    """

    begin: Any
    end: Any
    relative: str | None
    geometry: Any


FILTER_NAMES = tuple(Filters.__annotations__)


def search(
    db: Database,
    criteria: Mapping[str, Any] | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    **filters: Unpack[Filters],
) -> list[Dataset]:
    """Datasets matching every filter, ordered by ``time_start`` then ``id``."""
    _check_page(limit, offset)
    t = datasets_table
    with _refused_as_query_error(), db.begin() as conn:
        where = _where(conn, criteria, **_filters(filters))
        order = (t.c.time_start.asc().nulls_last(), t.c.id)
        query = sa.select(*_COLUMNS).where(*where).order_by(*order).limit(limit).offset(offset)
        rows = conn.execute(query).all()
        uris = _uris(conn, [r.id for r in rows])
    return [_dataset(row, uris.get(row.id, ())) for row in rows]


def count(
    db: Database, criteria: Mapping[str, Any] | None = None, **filters: Unpack[Filters]
) -> int:
    """How many datasets :func:`search` would find without a limit."""
    with _refused_as_query_error(), db.begin() as conn:
        where = _where(conn, criteria, **_filters(filters))
        query = sa.select(sa.func.count()).select_from(datasets_table).where(*where)
        return int(conn.execute(query).scalar_one())


def _filters(given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(FILTER_NAMES))
    if unknown:
        raise QueryError(f"unknown filter {unknown[0]!r}; filters: {', '.join(FILTER_NAMES)}")
    return {name: given.get(name) for name in FILTER_NAMES}


def get_dataset(db: Database, id_or_entry_id: int | str) -> Dataset:
    """One dataset by numeric ``id`` or by ``entry_id`` (any harvest status)."""
    t = datasets_table
    if isinstance(id_or_entry_id, bool) or not isinstance(id_or_entry_id, int | str):
        raise InvalidInput(f"invalid dataset id {id_or_entry_id!r}: expected an id or entry_id")
    if isinstance(id_or_entry_id, str) and "\x00" in id_or_entry_id:
        raise InvalidInput(f"invalid dataset id {id_or_entry_id!r}: contains a NUL byte")
    with _refused_as_query_error(), db.begin() as conn:
        row = None
        if isinstance(id_or_entry_id, str):
            query = sa.select(*_COLUMNS).where(t.c.entry_id == id_or_entry_id)
            row = conn.execute(query).first()
        number = _as_id(id_or_entry_id)
        if row is None and number is not None:
            row = conn.execute(sa.select(*_COLUMNS).where(t.c.id == number)).first()
        if row is None:
            raise DatasetNotFound(f"no dataset with id or entry_id {id_or_entry_id!r}")
        uris = _uris(conn, [row.id])
    return _dataset(row, uris.get(row.id, ()))


_COLUMNS = tuple(
    datasets_table.c[name]
    for name in (
        *IDENTITY_FIELDS,
        "footprint",
        "properties",
        "harvest_status",
        "harvest_error",
        "harvest_source",
    )
)


def _as_id(value: int | str) -> int | None:
    """A numeric dataset id from ``value``, None when it is not one (or beyond 64 bits)."""
    if isinstance(value, str):
        if not value.strip().isdigit():
            return None
        value = int(value)
    return value if 0 <= value <= INT64[1] else None


@contextmanager
def _refused_as_query_error() -> Iterator[None]:
    """A value the database refuses (bad data, a query too large) as a QueryError.

    The checks in :mod:`terrapipe.catalog.lookups` come first; this is the backstop, so no
    traceback with SQL and parameters ever reaches the user. Connection failures and other
    operational errors are not the caller's mistake and pass through.
    """
    try:
        yield
    except (sa.exc.DataError, sa.exc.OperationalError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        text = reason[0] if reason else type(exc).__name__
        if isinstance(exc, sa.exc.OperationalError) and not _TOO_LARGE.search(text):
            raise
        raise QueryError(
            f"the database refused the search criteria: {text}; simplify them"
        ) from None


_TOO_LARGE = re.compile(r"too large|too many|number of parameters|stack depth", re.IGNORECASE)


def _check_page(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"invalid limit {limit!r}: must be an integer in 1..{MAX_LIMIT}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise QueryError(f"invalid offset {offset!r}: must be an integer >= 0")


def _where(
    conn: Connection,
    criteria: Mapping[str, Any] | None,
    begin: Any,
    end: Any,
    relative: str | None,
    geometry: Any,
) -> list[ColumnElement[bool]]:
    """Every SQL condition of a search (criteria, status, time overlap, geometry)."""
    t = datasets_table
    criteria = criteria or {}
    dialect = conn.dialect.name
    where = build_conditions(criteria, dialect)
    if not any(parse_key(k)[0] == "harvest_status" for k in criteria):
        where.append(t.c.harvest_status == "ok")
    start, stop = time_window(begin, end, relative)
    if stop is not None:
        where.append(t.c.time_start <= stop)
    if start is not None:
        where.append(
            sa.or_(
                t.c.time_end >= start,
                sa.and_(t.c.time_end.is_(None), t.c.time_start >= start),
            )
        )
    if geometry is not None:
        where.extend(_spatial(conn, parse_geometry(geometry)))
    return where


def _spatial(conn: Connection, geom: BaseGeometry) -> list[ColumnElement[bool]]:
    t = datasets_table
    if conn.dialect.name == "postgresql":
        wkb = shapely.to_wkb(geom)
        query_geom = sa.func.ST_GeomFromWKB(sa.literal(wkb, sa.LargeBinary), 4326)
        return [sa.func.ST_Intersects(t.c.footprint, query_geom)]
    if conn.dialect.name != "sqlite":  # pragma: no cover
        raise QueryError(f"spatial search is not supported on {conn.dialect.name!r}")
    _register_exact_test(conn, geom)
    candidates = [_rtree_box(box) for box in bbox_boxes(footprint_bbox(geom))]
    ids = candidates[0] if len(candidates) == 1 else sa.union(*candidates)
    return [
        t.c.id.in_(ids),
        sa.func.tp_footprint_intersects(t.c.footprint) == 1,
    ]


def _rtree_box(box: Sequence[float]) -> Any:
    """Dataset ids whose R*Tree box overlaps ``box`` (rowid = 2*id or 2*id+1)."""
    west, south, east, north = box
    r = _rtree.c
    return sa.select(r.id // 2).where(
        r.minx <= east, r.maxx >= west, r.miny <= north, r.maxy >= south
    )


def _register_exact_test(conn: Connection, geom: BaseGeometry) -> None:
    """Give this SQLite connection the exact shapely test against ``geom``."""
    shapely.prepare(geom)

    def intersects(wkb: bytes | None) -> int:
        return int(wkb is not None and geom.intersects(shapely.from_wkb(wkb)))

    raw = conn.connection.driver_connection
    raw.create_function(_EXACT_FUNCTION, 1, intersects, deterministic=True)


def _uris(conn: Connection, ids: list[int]) -> dict[int, tuple[DatasetURI, ...]]:
    if not ids:
        return {}
    u = uris_table
    found: dict[int, list[DatasetURI]] = {}
    query = sa.select(u).where(u.c.dataset_id.in_(ids)).order_by(u.c.dataset_id, u.c.id)
    for r in conn.execute(query):
        found.setdefault(r.dataset_id, []).append(
            DatasetURI(
                uri=r.uri,
                role=r.role,
                name=r.name,
                media_type=r.media_type,
                size=r.size,
                checksum=r.checksum,
                local_path=r.local_path,
                id=r.id,
            )
        )
    return {k: tuple(v) for k, v in found.items()}


def _dataset(row: Any, uris: tuple[DatasetURI, ...]) -> Dataset:
    return Dataset(
        id=row.id,
        entry_id=row.entry_id,
        title=row.title,
        collection=row.collection,
        platform=row.platform,
        instrument=row.instrument,
        provider=row.provider,
        time_start=row.time_start,
        time_end=row.time_end,
        footprint=footprint_from_wkb(row.footprint),
        properties=row.properties or {},
        uris=uris,
        harvest_status=row.harvest_status,
        harvest_error=row.harvest_error,
        harvest_source=row.harvest_source,
    )
