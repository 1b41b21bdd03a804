"""Pages of features from a layer's GeoParquet, without loading a large layer whole.

Only the row groups that hold the page are read: with no ``bbox`` the page's row range
is found from the row-group sizes in the file footer; with a ``bbox`` the row groups
whose bbox-covering statistics miss it are skipped. Geometries are returned in CRS84
(lon/lat), as OGC API – Features asks by default; the feature id is the row's position
in the file.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from pyproj import CRS, Transformer

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TIME_COLUMNS = ("datetime", "date", "time", "timestamp")

Bbox = tuple[float, float, float, float]


@dataclass(frozen=True)
class GeoParquet:
    """What the footer says: geometry column, CRS, bbox covering columns, row groups."""

    path: Path
    geometry: str
    crs: CRS
    covering: dict[str, tuple[str, str]] | None  # xmin/ymin/xmax/ymax -> (column, field)
    row_groups: tuple[int, ...]  # rows per group
    time_column: str | None
    bbox84: Bbox | None

    @property
    def rows(self) -> int:
        return sum(self.row_groups)


def _signature(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def open_geoparquet(path: Path) -> GeoParquet | None:
    """The GeoParquet metadata of ``path``, or None if it has no geometry."""
    return _open_cached(*_signature(Path(path)))


@lru_cache(maxsize=256)
def _open_cached(path: str, _size: int, _mtime: int) -> GeoParquet | None:
    meta = pq.read_metadata(path)
    schema = meta.schema.to_arrow_schema()
    geo = json.loads((schema.metadata or {}).get(b"geo", b"null") or "null")
    if not geo or geo.get("primary_column") not in schema.names:
        return None
    column = geo["primary_column"]
    info = geo.get("columns", {}).get(column, {})
    crs = CRS.from_user_input(info["crs"]) if info.get("crs") else CRS.from_user_input("OGC:CRS84")
    covering = None
    spec = (info.get("covering") or {}).get("bbox")
    if spec and all(k in spec for k in ("xmin", "ymin", "xmax", "ymax")):
        covering = {k: tuple(spec[k]) for k in ("xmin", "ymin", "xmax", "ymax")}
    time_column = next(
        (c for c in TIME_COLUMNS if c in schema.names and _is_temporal(schema.field(c).type)),
        None,
    )
    bbox84 = None
    if info.get("bbox") and len(info["bbox"]) == 4:
        bbox84 = to_crs84(tuple(info["bbox"]), crs)
    groups = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
    return GeoParquet(Path(path), column, crs, covering, groups, time_column, bbox84)


def _is_temporal(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_string(kind)


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def _is_crs84(crs: CRS) -> bool:
    return crs.equals(CRS.from_user_input("OGC:CRS84"), ignore_axis_order=True)


def to_crs84(bounds: Bbox, crs: CRS) -> Bbox:
    if _is_crs84(crs):
        return bounds
    t = _transformer(crs.to_wkt(), "OGC:CRS84")
    return tuple(t.transform_bounds(*bounds, densify_pts=21))


def from_crs84(bbox: Bbox, crs: CRS) -> list[Bbox]:
    """``bbox`` (CRS84, may cross the antimeridian) as boxes in ``crs``."""
    west, south, east, north = bbox
    boxes = (
        [(west, south, east, north)]
        if west <= east
        else [
            (west, south, 180.0, north),
            (-180.0, south, east, north),
        ]
    )
    if _is_crs84(crs):
        return boxes
    t = _transformer("OGC:CRS84", crs.to_wkt())
    out = []
    for box in boxes:
        b = t.transform_bounds(*box, densify_pts=21)
        if all(math.isfinite(v) for v in b):
            out.append(tuple(b))
    return out


def _group_may_match(meta: pq.FileMetaData, index: int, gp: GeoParquet, boxes: list[Bbox]) -> bool:
    """False when the row group's covering statistics show no row can meet ``boxes``."""
    if gp.covering is None:
        return True
    group = meta.row_group(index)
    stats: dict[str, tuple[float, float]] = {}
    for i in range(group.num_columns):
        col = group.column(i)
        for key, (name, field) in gp.covering.items():
            if col.path_in_schema == f"{name}.{field}" and col.statistics is not None:
                s = col.statistics
                if s.has_min_max:
                    stats[key] = (float(s.min), float(s.max))
    if len(stats) < 4:
        return True
    return any(
        stats["xmin"][0] <= box[2]
        and stats["xmax"][1] >= box[0]
        and stats["ymin"][0] <= box[3]
        and stats["ymax"][1] >= box[1]
        for box in boxes
    )


def _bounds_of(table: pa.Table, gp: GeoParquet) -> np.ndarray:
    if gp.covering is not None:
        name = gp.covering["xmin"][0]
        struct = table.column(name).combine_chunks()
        return np.column_stack(
            [
                np.asarray(struct.field(gp.covering[k][1]).to_numpy(zero_copy_only=False), float)
                for k in ("xmin", "ymin", "xmax", "ymax")
            ]
        )
    geoms = shapely.from_wkb(table.column(gp.geometry).to_numpy(zero_copy_only=False))
    return shapely.bounds(geoms)


def _time_mask(values: pa.ChunkedArray, start: dt.datetime | None, end: dt.datetime | None):
    py = values.to_pylist()
    out = np.ones(len(py), dtype=bool)
    for i, v in enumerate(py):
        t = _as_datetime(v)
        if t is None:
            out[i] = False
            continue
        if start is not None and t < start:
            out[i] = False
        if end is not None and t > end:
            out[i] = False
    return out


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass
class Page:
    features: list[dict[str, Any]]
    matched: int


def read_page(
    gp: GeoParquet,
    *,
    bbox: Bbox | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    offset: int = 0,
    limit: int = 10,
) -> Page:
    """Features ``offset .. offset+limit`` of those matching ``bbox`` (CRS84) and time."""
    pf = pq.ParquetFile(gp.path)
    filtering = bbox is not None or ((start or end) and gp.time_column)
    if not filtering:
        return Page(_rows_by_position(pf, gp, offset, limit), gp.rows)
    boxes = from_crs84(bbox, gp.crs) if bbox is not None else []
    if bbox is not None and not boxes:
        return Page([], 0)
    features: list[dict[str, Any]] = []
    matched = 0
    first_row = 0
    needed = offset + limit
    for index, n_rows in enumerate(gp.row_groups):
        group_start = first_row
        first_row += n_rows
        if bbox is not None and not _group_may_match(pf.metadata, index, gp, boxes):
            continue
        columns = _filter_columns(gp)
        table = pf.read_row_group(index, columns=columns)
        mask = np.ones(table.num_rows, dtype=bool)
        if bbox is not None:
            b = _bounds_of(table, gp)
            hit = np.zeros(table.num_rows, dtype=bool)
            for w, s, e, n in boxes:
                hit |= (b[:, 0] <= e) & (b[:, 2] >= w) & (b[:, 1] <= n) & (b[:, 3] >= s)
            candidates = np.flatnonzero(hit)
            if len(candidates):  # exact test, in CRS84, on the envelope's candidates
                geoms = _geometries(pf, index, gp).take(pa.array(candidates))
                exact = shapely.intersects(_to_crs84(_wkb(geoms), gp.crs), _bbox_shape(bbox))
                hit[candidates] = exact
            mask &= hit
        if (start or end) and gp.time_column:
            mask &= _time_mask(table.column(gp.time_column), start, end)
        positions = np.flatnonzero(mask)
        take_from = max(0, offset - matched)
        take_to = max(0, needed - matched)
        matched += len(positions)
        wanted = positions[take_from:take_to]
        if len(wanted):
            full = pf.read_row_group(index).take(pa.array(wanted))
            features.extend(_features(full, gp, (group_start + wanted).tolist()))
    return Page(features, matched)


def _geometries(pf: pq.ParquetFile, index: int, gp: GeoParquet) -> pa.Array:
    return pf.read_row_group(index, columns=[gp.geometry]).column(0).combine_chunks()


def _wkb(values: pa.Array) -> np.ndarray:
    return shapely.from_wkb(values.to_numpy(zero_copy_only=False))


def _to_crs84(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    if _is_crs84(crs):
        return geoms
    t = _transformer(crs.to_wkt(), "OGC:CRS84")
    return shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def _bbox_shape(bbox: Bbox) -> Any:
    west, south, east, north = bbox
    if west <= east:
        return shapely.box(west, south, east, north)
    return shapely.MultiPolygon(
        [shapely.box(west, south, 180.0, north), shapely.box(-180.0, south, east, north)]
    )


def _filter_columns(gp: GeoParquet) -> list[str]:
    cols = []
    if gp.covering is not None:
        cols.append(gp.covering["xmin"][0])
    else:
        cols.append(gp.geometry)
    if gp.time_column:
        cols.append(gp.time_column)
    return cols


def _rows_by_position(pf: pq.ParquetFile, gp: GeoParquet, offset: int, limit: int) -> list[dict]:
    out: list[dict[str, Any]] = []
    first_row = 0
    end = offset + limit
    for index, n_rows in enumerate(gp.row_groups):
        group_start, first_row = first_row, first_row + n_rows
        if first_row <= offset or group_start >= end:
            continue
        table = pf.read_row_group(index)
        lo, hi = max(offset, group_start) - group_start, min(end, first_row) - group_start
        out.extend(
            _features(table.slice(lo, hi - lo), gp, list(range(group_start + lo, group_start + hi)))
        )
    return out


def read_feature(gp: GeoParquet, fid: int) -> dict[str, Any] | None:
    if fid < 0 or fid >= gp.rows:
        return None
    return (_rows_by_position(pq.ParquetFile(gp.path), gp, fid, 1) or [None])[0]


def _features(table: pa.Table, gp: GeoParquet, ids: list[int]) -> list[dict[str, Any]]:
    geoms = _to_crs84(_wkb(table.column(gp.geometry).combine_chunks()), gp.crs)
    skip = {gp.geometry} | ({gp.covering["xmin"][0]} if gp.covering else set())
    names = [n for n in table.column_names if n not in skip]
    columns = {n: table.column(n).to_pylist() for n in names}
    out = []
    for i, fid in enumerate(ids):
        geom = geoms[i]
        out.append(
            {
                "type": "Feature",
                "id": fid,
                "geometry": None if geom is None else json.loads(shapely.to_geojson(geom)),
                "properties": {n: _json_value(columns[n][i]) for n in names},
            }
        )
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def parse_bbox(text: str) -> Bbox:
    """``minx,miny,maxx,maxy`` (CRS84); a 6-number 3D box keeps its horizontal part."""
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise ValueError("bbox needs 4 (or 6) comma separated numbers: minx,miny,maxx,maxy")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"bbox has a value that is not a number: {text!r}") from None
    if not all(math.isfinite(v) for v in nums):
        raise ValueError("bbox values must be finite numbers")
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    west, south, east, north = nums
    if south > north or not (-90 <= south <= 90 and -90 <= north <= 90):
        raise ValueError("bbox latitudes must be within -90..90 with miny <= maxy")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise ValueError("bbox longitudes must be within -180..180")
    return (west, south, east, north)


def parse_datetime(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """An RFC 3339 instant, or an interval ``start/end`` with ``..`` (or empty) open ends."""
    if "/" in text:
        a, _, b = text.partition("/")
        start = None if a in ("", "..") else _instant(a)
        end = None if b in ("", "..") else _instant(b)
        if start is None and end is None and not (a in ("", "..") and b in ("", "..")):
            raise ValueError("invalid datetime interval")
        if start and end and start > end:
            raise ValueError("datetime interval ends before it starts")
        return start, end
    t = _instant(text)
    if len(text.strip()) == 10:  # a date: the whole day
        return t, t + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    return t, t


def _instant(text: str) -> dt.datetime:
    t = _as_datetime(text.strip())
    if t is None:
        raise ValueError(f"invalid datetime {text!r}: use RFC 3339, e.g. 2024-01-15T00:00:00Z")
    return t
