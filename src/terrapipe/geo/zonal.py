"""Zonal statistics with exactextract (exact coverage fractions), and reusable coverage.

:func:`zonal_stats` returns one row per zone: the zone's attributes, then one column per
statistic named after it (``mean``, ``count``, ``dominant``; ``frac_<class>`` for the
fractional area of each class). ``count`` and ``sum`` weight cells by the fraction of the
cell inside the zone, as exactextract does.

For many rasters on one grid (an NDVI series), :func:`zone_coverage` computes each zone's
cells and coverage fractions once; :meth:`ZoneCoverage.apply` then summarises any array on
that grid with a few numpy reductions, without a new polygon rasterisation per date.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import exactextract
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import rasterio.windows
import shapely
from affine import Affine
from exactextract.raster import NumPyRasterSource, RasterioRasterSource
from rasterio.windows import Window

from terrapipe.errors import (
    GeoInputError,
    GridMismatch,
    RasterError,
    RoiOutsideData,
    VectorError,
)
from terrapipe.geo.crs import rio_crs
from terrapipe.geo.grid import grid_bounds
from terrapipe.geo.raster import (
    RasterArray,
    check_budget,
    nodata_mask,
    open_raster,
)
from terrapipe.geo.roi import footprint

__all__ = ["STATS", "ZoneCoverage", "zonal_stats", "zone_coverage"]

# requested name -> exactextract operation
STATS: dict[str, str] = {
    "mean": "mean",
    "min": "min",
    "max": "max",
    "sum": "sum",
    "count": "count",
    "majority": "majority",
    "dominant": "majority",
    "minority": "minority",
    "median": "median",
    "stdev": "stdev",
    "variance": "variance",
    "variety": "variety",
    "frac": "frac",
}
_COVERAGE_STATS = ("mean", "min", "max", "sum", "count")
log = logging.getLogger(__name__)
_ZONE_MARGIN_DEG = 5.0  # zones are cut this far around the raster footprint (degrees)


def _parse_stats(stats: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in stats.split(",")] if isinstance(stats, str) else list(stats)
    names = [n for n in names if n]
    if not names:
        raise GeoInputError("no statistics requested")
    unknown = [n for n in names if n not in STATS]
    if unknown:
        raise GeoInputError(f"unknown statistic(s) {unknown}; choose from {sorted(STATS)}")
    return list(dict.fromkeys(names))


def _numpy_source(raster: RasterArray, band: int, nodata: Any = None) -> NumPyRasterSource:
    arr = raster.array if raster.array.ndim == 2 else raster.array[band - 1]
    west, south, east, north = raster.bounds
    return NumPyRasterSource(
        arr,
        west,
        south,
        east,
        north,
        nodata=raster.nodata if nodata is None else nodata,
        srs_wkt=rio_crs(raster.crs).to_wkt(),
    )


class _NodataRasterioSource(RasterioRasterSource):
    """A rasterio source whose nodata value is given, replacing (or supplying) the file's tag."""

    def __init__(self, ds: Any, band_idx: int, nodata: float | int) -> None:
        super().__init__(ds, band_idx=band_idx)
        self._nodata = nodata

    def nodata_value(self) -> None:
        return None  # the mask returned by read_window says which cells are nodata

    def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ma.MaskedArray:
        raw = self.ds.read(self.band_idx, window=Window(x0, y0, nx, ny))
        mask = nodata_mask(raw, self._nodata)
        arr = raw.astype("float64") * self.scale + self.offset if self.scaled else raw
        return np.ma.masked_array(arr, mask)


@dataclass(frozen=True)
class _Grid:
    """A raster band to summarise: grid, nodata in force, an exactextract source, cell reads."""

    transform: Affine
    shape: tuple[int, int]
    crs: Any
    dtype: np.dtype
    nodata: float | int | None
    label: str
    source: Any
    read: Callable[[Window], np.ndarray]  # raw values of a window (scaled as the source is)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return grid_bounds(self.transform, self.shape)


@contextmanager
def _open_grid(raster: str | Path | RasterArray, band: int, nodata: Any = None) -> Iterator[_Grid]:
    """The band as a :class:`_Grid` (file closed after); ``nodata`` overrides the tag."""
    if isinstance(raster, RasterArray):
        nbands = 1 if raster.array.ndim == 2 else raster.array.shape[0]
        if not 1 <= band <= nbands:
            raise RasterError(f"in-memory raster has no band {band}")
        arr = raster.array if raster.array.ndim == 2 else raster.array[band - 1]

        def read_array(w: Window) -> np.ndarray:
            r0, c0 = int(w.row_off), int(w.col_off)
            return arr[r0 : r0 + int(w.height), c0 : c0 + int(w.width)]

        yield _Grid(
            raster.transform,
            raster.shape,
            rio_crs(raster.crs),
            arr.dtype,
            raster.nodata if nodata is None else nodata,
            "in-memory raster",
            _numpy_source(raster, band, nodata),
            read_array,
        )
        return
    path = Path(raster)
    with open_raster(path) as src:
        if not 1 <= band <= src.count:
            raise RasterError(f"{path}: no band {band} (has {src.count})")
        source = (
            RasterioRasterSource(src, band_idx=band)
            if nodata is None
            else _NodataRasterioSource(src, band, nodata)
        )
        scale, offset = src.scales[band - 1], src.offsets[band - 1]

        def read_file(w: Window) -> np.ndarray:
            raw = src.read(band, window=w)
            if (scale, offset) == (1.0, 0.0):
                return raw
            return np.where(
                nodata_mask(raw, effective), np.nan, raw.astype("float64") * scale + offset
            )

        effective = src.nodata if nodata is None else nodata
        yield _Grid(
            src.transform,
            (src.height, src.width),
            src.crs,
            np.dtype(src.dtypes[band - 1]),
            effective if (scale, offset) == (1.0, 0.0) else float("nan"),
            str(path),
            source,
            read_file,
        )


def _zone_label(zones: gpd.GeoDataFrame, pos: int) -> str:
    """``zone 3 ('Fiji')``: the zone's index and its name (a ``name`` column, else the first
    text column), for messages."""
    key = zones.index[pos]
    text = [
        c
        for c in zones.columns
        if c != zones.geometry.name and pd.api.types.is_string_dtype(zones[c])
    ]
    named = [c for c in text if str(c).lower() in ("name", "name_en", "label", "id")]
    column = (named or text or [None])[0]
    return f"zone {key!r} ({zones[column].iloc[pos]!r})" if column else f"zone {key!r}"


@dataclass(frozen=True)
class _LocalZones:
    """The zones that reach the raster, cut to its footprint and reprojected onto it."""

    positions: np.ndarray  # positions (0..n-1) in the caller's zones
    geometry: gpd.GeoSeries  # in the raster CRS, same order as ``positions``


def _local_zones(zones: gpd.GeoDataFrame, grid: _Grid) -> _LocalZones:
    """Zones in the raster's CRS, cut first to the raster footprint (densified) in theirs.

    Zones that miss the footprint are left out (their statistics are null), so one zone on
    the other side of the globe (Antarctica, Fiji across 180) cannot break the whole run.
    The footprint is widened by :data:`_ZONE_MARGIN_DEG` degrees (or its own size in a
    projected CRS): the cut then only adds vertices far from the raster, so every edge over
    the raster is reprojected from the zone's own vertices, as with the whole zone.
    """
    if not isinstance(zones, gpd.GeoDataFrame):
        raise VectorError(f"zones must be a GeoDataFrame, got {type(zones).__name__}")
    if zones.crs is None:
        raise VectorError("zones have no CRS")
    if zones.empty:
        raise VectorError("no zones given")
    geoms = zones.geometry.values
    present = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    invalid = present & ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    crs = rio_crs(grid.crs)
    if zones.crs.equals(crs):
        area, same = shapely.box(*grid.bounds), True
    else:
        zcrs = zones.crs
        if zcrs.is_geographic:
            area = footprint(grid.bounds, crs, zcrs, margin=_ZONE_MARGIN_DEG)
        else:
            area = footprint(grid.bounds, crs, zcrs, pad=1.0)
        same = False
    if area is not None:
        present &= shapely.intersects(geoms, area)
    positions = np.flatnonzero(present)
    kept = geoms[positions]
    if area is not None and not same:
        inside = shapely.contains(area, kept)
        kept = kept.copy()
        kept[~inside] = shapely.intersection(kept[~inside], area)
    local = gpd.GeoSeries(kept, crs=zones.crs)
    if not same:
        local = local.to_crs(crs)
    coords = shapely.get_coordinates(local.values)
    if not np.isfinite(coords).all():
        bad = [
            i
            for i, g in enumerate(local.values)
            if not np.isfinite(shapely.get_coordinates(g)).all()
        ]
        raise VectorError(
            f"{_zone_label(zones, int(positions[bad[0]]))} cannot be reprojected onto "
            f"{grid.label} ({crs.to_string()}); fix or drop that zone"
        )
    return _LocalZones(positions, local.reset_index(drop=True))


def _col_row(transform: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (col, row) of map coordinates on a grid."""
    inv = ~transform
    return inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f


def _windows(geoms: gpd.GeoSeries, grid: _Grid) -> np.ndarray:
    """Each geometry's pixel window on the grid, cut to it: rows ``(row0, col0, rows, cols)``."""
    rows, cols = grid.shape
    if len(geoms) == 0:
        return np.zeros((0, 4), "int64")
    b = geoms.bounds.to_numpy()
    c_a, r_a = _col_row(grid.transform, b[:, 0], b[:, 3])
    c_b, r_b = _col_row(grid.transform, b[:, 2], b[:, 1])
    c0 = np.clip(np.floor(np.minimum(c_a, c_b)), 0, cols)
    c1 = np.clip(np.floor(np.maximum(c_a, c_b)) + 1, 0, cols)
    r0 = np.clip(np.floor(np.minimum(r_a, r_b)), 0, rows)
    r1 = np.clip(np.floor(np.maximum(r_a, r_b)) + 1, 0, rows)
    return np.stack([r0, c0, r1 - r0, c1 - c0], axis=1).astype("int64")


def _check_zone_budget(
    zones: gpd.GeoDataFrame,
    local: _LocalZones,
    wins: np.ndarray,
    grid: _Grid,
    budget: int | None,
) -> None:
    """Refuse a zone whose window would be over the memory budget (bounds time as well)."""
    if len(wins) == 0:
        return
    cells = wins[:, 2] * wins[:, 3]
    worst = int(np.argmax(cells))
    name = f"{grid.label} over {_zone_label(zones, int(local.positions[worst]))}"
    check_budget(
        name,
        int(wins[worst, 2]),
        int(wins[worst, 3]),
        itemsize=grid.dtype.itemsize,
        what="zonal statistics of",
        budget=budget,
    )


_POLYGONAL = ("Polygon", "MultiPolygon")


def _touched_cells(geom: Any, window: np.ndarray, grid: _Grid) -> np.ndarray:
    """The ``(row, col)`` cells a point or line zone touches, each once.

    A point takes the cell it falls in; a line every cell it touches (rasterstats'
    ``all_touched``). Collections combine their parts.
    """
    r0, c0, h, w = (int(v) for v in window)
    if h <= 0 or w <= 0:
        return np.zeros((0, 2), "int64")
    parts = shapely.get_parts(geom)
    kinds = shapely.get_type_id(parts)
    found: list[np.ndarray] = []
    points = parts[kinds == 0]
    if len(points):
        xy = shapely.get_coordinates(points)
        c, r = _col_row(grid.transform, xy[:, 0], xy[:, 1])
        c, r = np.floor(c).astype("int64"), np.floor(r).astype("int64")
        rows, cols = grid.shape
        ok = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
        found.append(np.stack([r[ok], c[ok]], axis=1))
    lines = list(parts[np.isin(kinds, (1, 2))])
    if lines:
        win = Window(c0, r0, w, h)
        hit = rasterio.features.geometry_mask(
            lines,
            out_shape=(h, w),
            transform=rasterio.windows.transform(win, grid.transform),
            all_touched=True,
            invert=True,
        )
        rr, cc = np.nonzero(hit)
        found.append(np.stack([rr + r0, cc + c0], axis=1))
    if not found:
        return np.zeros((0, 2), "int64")
    return np.unique(np.concatenate(found).astype("int64"), axis=0)


def _cell_values(geom: Any, window: np.ndarray, grid: _Grid) -> tuple[np.ndarray, bool]:
    """The valid values of the cells a point or line zone touches, and whether it touches any."""
    cells = _touched_cells(geom, window, grid)
    if not len(cells):
        return np.zeros(0), False
    if len(cells) <= 64:
        raw = np.concatenate(
            [grid.read(Window(int(c), int(r), 1, 1)).reshape(-1) for r, c in cells]
        )
    else:
        r0, c0, h, w = (int(v) for v in window)
        block = grid.read(Window(c0, r0, w, h))
        raw = block[cells[:, 0] - r0, cells[:, 1] - c0]
    return _valid(raw, grid), True


def _valid(values: np.ndarray, grid: _Grid) -> np.ndarray:
    return values[~nodata_mask(values, grid.nodata)].astype("float64")


def _cell_stats(values: np.ndarray, ops: Sequence[str]) -> dict[str, Any]:
    """exactextract's operations over whole cells (weight 1), for point and line zones."""
    n = values.size
    out: dict[str, Any] = {}
    uniq, counts = np.unique(values, return_counts=True) if n else (np.zeros(0), np.zeros(0))
    for op in ops:
        if op == "count":
            out[op] = float(n)
        elif op == "sum":
            out[op] = float(values.sum())
        elif op == "variety":
            out[op] = int(len(uniq))
        elif op == "unique":
            out[op] = uniq
        elif op == "frac":
            out[op] = counts / n if n else np.zeros(0)
        elif not n:
            out[op] = np.nan
        elif op == "mean":
            out[op] = float(values.mean())
        elif op == "min":
            out[op] = float(values.min())
        elif op == "max":
            out[op] = float(values.max())
        elif op == "median":
            out[op] = float(np.median(values))
        elif op == "stdev":
            out[op] = float(values.std())
        elif op == "variance":
            out[op] = float(values.var())
        elif op == "majority":
            out[op] = float(uniq[np.argmax(counts)])
        elif op == "minority":
            out[op] = float(uniq[np.argmin(counts)])
        else:  # pragma: no cover - STATS and this list are kept in step
            raise GeoInputError(f"statistic {op!r} is not supported for point or line zones")
    return out


def _empty_column(op: str, n: int) -> np.ndarray:
    if op in ("unique", "frac"):
        col = np.empty(n, dtype=object)
        for i in range(n):
            col[i] = np.zeros(0)
        return col
    return np.full(n, np.nan)


def zonal_stats(
    raster: str | Path | RasterArray,
    zones: gpd.GeoDataFrame,
    *,
    stats: str | Sequence[str] = ("mean",),
    band: int = 1,
    nodata: float | int | None = None,
    memory_budget: int | None = None,
) -> gpd.GeoDataFrame:
    """One row per zone: its attributes and geometry plus one column per statistic.

    Polygons are summarised with exactextract's coverage fractions. A point takes the value
    of the cell it falls in (mean = min = max = value, count 1) and a line the cells it
    touches, as rasterstats does. ``nodata`` replaces (or supplies) the raster's nodata tag.
    Zones off the raster get null statistics (logged as a warning); none on it at all is
    :class:`RoiOutsideData`. A zone whose window on the raster is over ``memory_budget``
    bytes (default 2 GiB) is refused before any work, which bounds time as well as memory.
    """
    names = _parse_stats(stats)
    clash = [n for n in names if n in zones.columns and n != "frac"]
    if clash:
        raise VectorError(f"zones already have column(s) named like statistics: {clash}")
    ops = list(dict.fromkeys(STATS[n] for n in names))
    if "frac" in ops:
        ops.insert(ops.index("frac"), "unique")
    n = len(zones)
    table = {op: _empty_column(op, n) for op in ops}
    with _open_grid(raster, band, nodata) as grid:
        local = _local_zones(zones, grid)
        wins = _windows(local.geometry, grid)
        on_grid = (wins[:, 2] > 0) & (wins[:, 3] > 0)
        if len(wins):
            on_grid &= local.geometry.intersects(shapely.box(*grid.bounds)).to_numpy()
        if not on_grid.any():
            raise RoiOutsideData(f"no zone intersects {grid.label} (raster extent {grid.bounds})")
        _check_zone_budget(zones, local, np.where(on_grid[:, None], wins, 0), grid, memory_budget)
        kinds = local.geometry.geom_type.to_numpy()
        areal = on_grid & np.isin(kinds, _POLYGONAL)
        missed = ~on_grid
        if areal.any():
            sub = gpd.GeoDataFrame(geometry=local.geometry[areal].values, crs=grid.crs)
            result = _exact_extract(grid, sub, ops, zones, local.positions[areal])
            for op in ops:
                table[op][local.positions[areal]] = result[op].to_numpy()
        for i in np.flatnonzero(on_grid & ~areal):
            values, touched = _cell_values(local.geometry.iloc[i], wins[i], grid)
            if not touched:
                missed[i] = True
                continue
            for op, value in _cell_stats(values, ops).items():
                table[op][local.positions[i]] = value
    has = np.zeros(n, bool)
    has[local.positions[~missed]] = True
    if not has.all():
        log.warning(
            "zonal statistics: %d of %d zone(s) are outside %s and get null statistics (first: %s)",
            int((~has).sum()),
            n,
            grid.label,
            _zone_label(zones, int(np.argmin(has))),
        )
    columns: dict[str, Any] = {}
    for name in names:
        op = STATS[name]
        if op == "frac":
            columns.update(_expand_frac(table["unique"], table["frac"], zones.index, has))
        else:
            columns[name] = pd.Series(table[op], index=zones.index)
    out = zones.copy()
    for key, values in columns.items():
        out[key] = values
    return out


def _exact_extract(
    grid: _Grid,
    sub: gpd.GeoDataFrame,
    ops: list[str],
    zones: gpd.GeoDataFrame,
    positions: np.ndarray,
) -> pd.DataFrame:
    """exactextract over polygon zones; a failure is retried zone by zone to name the culprit."""
    try:
        return exactextract.exact_extract(grid.source, sub, ops, output="pandas")
    except RuntimeError as exc:
        for i in range(len(sub)):
            try:
                exactextract.exact_extract(grid.source, sub.iloc[[i]], ops, output="pandas")
            except RuntimeError as one:
                raise RasterError(
                    f"zonal statistics failed on {grid.label} for "
                    f"{_zone_label(zones, int(positions[i]))}: {one}"
                ) from one
        raise RasterError(f"zonal statistics failed on {grid.label}: {exc}") from exc


def _expand_frac(
    uniques: Sequence[Any], fracs: Sequence[Any], index: pd.Index, has: np.ndarray
) -> dict[str, pd.Series]:
    """Per-zone (class, fraction) arrays -> one ``frac_<class>`` column each (null off-grid)."""
    classes = sorted({v for arr in uniques for v in np.asarray(arr).tolist()})
    table = {c: np.where(has, 0.0, np.nan) for c in classes}
    for i, (u, f) in enumerate(zip(uniques, fracs, strict=True)):
        for cls, frac in zip(np.asarray(u).tolist(), np.asarray(f).tolist(), strict=True):
            table[cls][i] = frac
    return {f"frac_{_class_label(c)}": pd.Series(v, index=index) for c, v in table.items()}


def _class_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value).replace(".", "p")


@dataclass(frozen=True)
class ZoneCoverage:
    """Cells and coverage fractions of each zone on one grid, computed once, applied often."""

    transform: Affine
    shape: tuple[int, int]
    crs: Any
    window: Window  # the part of the grid the zones touch
    zone: np.ndarray  # zone position (0..n-1) of each entry, non-decreasing
    cell: np.ndarray  # flat cell index within ``window``
    weight: np.ndarray  # fraction of the cell covered by the zone
    index: pd.Index  # the zones' index

    @property
    def n_zones(self) -> int:
        return len(self.index)

    def check_grid(self, transform: Affine, shape: tuple[int, int], *, name: str) -> None:
        """Raise :class:`GridMismatch` naming ``name`` unless it is on this coverage's grid."""
        if tuple(shape) != tuple(self.shape) or not transform.almost_equals(self.transform):
            raise GridMismatch(
                f"{name} is not on the zone grid: shape {tuple(shape)} / {tuple(transform)[:6]} "
                f"vs {tuple(self.shape)} / {tuple(self.transform)[:6]}"
            )

    def save(self, path: str | Path) -> Path:
        """Store the coverage as ``.npz`` (so an incremental run can skip recomputing it)."""
        dest = Path(path)
        index = np.asarray(self.index)
        if index.dtype == object:
            index = index.astype(str)
        w = self.window
        tmp = dest.with_name(f".{dest.stem}.tmp.npz")
        np.savez_compressed(
            tmp,
            transform=np.array(tuple(self.transform)[:6]),
            shape=np.array(self.shape),
            crs=np.array(rio_crs(self.crs).to_wkt()),
            window=np.array([w.col_off, w.row_off, w.width, w.height]),
            zone=self.zone,
            cell=self.cell,
            weight=self.weight,
            index=index,
        )
        tmp.replace(dest)
        return dest

    @classmethod
    def load(cls, path: str | Path) -> ZoneCoverage:
        """Read a coverage written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as f:
                col, row, width, height = (int(v) for v in f["window"])
                return cls(
                    transform=Affine(*f["transform"].tolist()),
                    shape=tuple(int(v) for v in f["shape"]),
                    crs=rio_crs(str(f["crs"])),
                    window=Window(col, row, width, height),
                    zone=f["zone"],
                    cell=f["cell"],
                    weight=f["weight"],
                    index=pd.Index(f["index"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise GeoInputError(f"not a zone coverage file: {path} ({exc})") from exc

    def read_window(
        self, path: str | Path, *, band: int = 1, memory_budget: int | None = None
    ) -> np.ndarray:
        """Read only the window the zones cover from a raster on this grid (budget checked)."""
        with open_raster(path) as src:
            self.check_grid(src.transform, (src.height, src.width), name=str(path))
            w = self.window
            itemsize = np.dtype(src.dtypes[band - 1]).itemsize
            check_budget(str(path), w.height, w.width, itemsize=itemsize, budget=memory_budget)
            return src.read(band, window=self.window)

    def apply(
        self,
        array: np.ndarray,
        *,
        nodata: float | None = None,
        stats: Sequence[str] = ("mean",),
    ) -> pd.DataFrame:
        """Coverage-weighted statistics of an array (full grid or window) for every zone."""
        bad = [s for s in stats if s not in _COVERAGE_STATS]
        if bad:
            raise GeoInputError(f"coverage reuse supports {_COVERAGE_STATS}, not {bad}")
        w = self.window
        if array.shape == tuple(self.shape):
            array = array[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width]
        elif array.shape != (w.height, w.width):
            raise GridMismatch(
                f"array of shape {array.shape} matches neither the grid {self.shape} "
                f"nor the zone window {(w.height, w.width)}"
            )
        values = array.reshape(-1)[self.cell].astype("float64", copy=False)
        valid = np.isfinite(values)
        if nodata is not None and not np.isnan(nodata):
            valid &= values != nodata
        wv = np.where(valid, self.weight, 0.0)
        n = self.n_zones
        count = np.bincount(self.zone, weights=wv, minlength=n)
        out: dict[str, np.ndarray] = {}
        if "sum" in stats or "mean" in stats:
            total = np.bincount(self.zone, weights=wv * np.where(valid, values, 0.0), minlength=n)
            if "mean" in stats:
                with np.errstate(invalid="ignore", divide="ignore"):
                    out["mean"] = np.where(count > 0, total / count, np.nan)
            if "sum" in stats:
                out["sum"] = total
        if "min" in stats or "max" in stats:
            has = valid & (self.weight > 0)
            if "min" in stats:
                out["min"] = _segment_reduce(np.fmin, values, has, self.zone, n, np.inf)
            if "max" in stats:
                out["max"] = _segment_reduce(np.fmax, values, has, self.zone, n, -np.inf)
        if "count" in stats:
            out["count"] = count
        return pd.DataFrame({s: out[s] for s in stats}, index=self.index)


def _segment_reduce(
    ufunc: np.ufunc, values: np.ndarray, keep: np.ndarray, zone: np.ndarray, n: int, fill: float
) -> np.ndarray:
    result = np.full(n, fill)
    ufunc.at(result, zone[keep], values[keep])
    result[~np.isfinite(result)] = np.nan
    return result


def zone_coverage(
    raster: str | Path | RasterArray,
    zones: gpd.GeoDataFrame,
    *,
    memory_budget: int | None = None,
) -> ZoneCoverage:
    """Compute once which cells of the raster's grid each zone covers, and by how much.

    Only the grid matters (values are never read): exactextract runs over a zero-stride
    array of the grid's shape, so no raster I/O happens here. Zones are cut to the raster's
    footprint before reprojection; zones off the grid cover no cells (null statistics).
    A point zone covers the cell it falls in, a line the cells it touches (weight 1). A zone
    whose window is over ``memory_budget`` bytes (as float64; default 2 GiB) is refused.
    """
    if isinstance(raster, RasterArray):
        transform, shape, crs, label = raster.transform, raster.shape, raster.crs, "raster"
    else:
        with open_raster(raster) as src:
            transform, shape, crs = src.transform, (src.height, src.width), src.crs
        label = str(raster)
    rows, cols = shape
    ones = RasterArray(np.broadcast_to(np.uint8(1), shape), transform, crs, None)
    grid = _Grid(
        transform, shape, rio_crs(crs), np.dtype("float64"), None, label, None, lambda w: None
    )
    local = _local_zones(zones, grid)
    wins = _windows(local.geometry, grid)
    on_grid = (wins[:, 2] > 0) & (wins[:, 3] > 0)
    _check_zone_budget(zones, local, np.where(on_grid[:, None], wins, 0), grid, memory_budget)
    areal = on_grid & np.isin(local.geometry.geom_type.to_numpy(), _POLYGONAL)
    cells: list[np.ndarray] = [np.zeros(0, "int64")] * len(zones)
    weights: list[np.ndarray] = [np.zeros(0)] * len(zones)
    if areal.any():
        sub = gpd.GeoDataFrame(geometry=local.geometry[areal].values, crs=grid.crs)
        try:
            result = exactextract.exact_extract(
                _numpy_source(ones, 1), sub, ["cell_id", "coverage"], output="pandas"
            )
        except RuntimeError as exc:
            raise RasterError(f"coverage computation failed on {label}: {exc}") from exc
        for pos, cid, cov in zip(
            local.positions[areal], result["cell_id"], result["coverage"], strict=True
        ):
            cells[pos] = np.asarray(cid, dtype="int64")
            weights[pos] = np.asarray(cov, dtype="float64")
    for i in np.flatnonzero(on_grid & ~areal):
        rc = _touched_cells(local.geometry.iloc[i], wins[i], grid)
        cells[local.positions[i]] = rc[:, 0] * cols + rc[:, 1]
        weights[local.positions[i]] = np.ones(len(rc))
    lengths = np.array([len(c) for c in cells])
    zone = np.repeat(np.arange(len(cells)), lengths)
    flat = np.concatenate(cells) if cells else np.zeros(0, "int64")
    weight = np.concatenate(weights) if weights else np.zeros(0)
    if flat.size == 0:
        raise RoiOutsideData(f"no zone overlaps {label} ({grid_bounds(transform, (rows, cols))})")
    r, c = np.divmod(flat, cols)
    r0, c0 = int(r.min()), int(c.min())
    window = Window(c0, r0, int(c.max()) - c0 + 1, int(r.max()) - r0 + 1)
    local_flat = (r - r0) * window.width + (c - c0)
    return ZoneCoverage(
        transform=transform,
        shape=(rows, cols),
        crs=crs,
        window=window,
        zone=zone,
        cell=local_flat,
        weight=weight,
        index=zones.index,
    )
