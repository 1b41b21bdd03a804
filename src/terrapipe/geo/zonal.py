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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import exactextract
import geopandas as gpd
import numpy as np
import pandas as pd
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
from terrapipe.geo.raster import RasterArray, _bounds, open_raster, rio_crs

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


def _parse_stats(stats: str | Sequence[str]) -> list[str]:
    names = [s.strip() for s in stats.split(",")] if isinstance(stats, str) else list(stats)
    names = [n for n in names if n]
    if not names:
        raise GeoInputError("no statistics requested")
    unknown = [n for n in names if n not in STATS]
    if unknown:
        raise GeoInputError(f"unknown statistic(s) {unknown}; choose from {sorted(STATS)}")
    return list(dict.fromkeys(names))


def _numpy_source(raster: RasterArray, band: int) -> NumPyRasterSource:
    arr = raster.array if raster.array.ndim == 2 else raster.array[band - 1]
    west, south, east, north = raster.bounds
    return NumPyRasterSource(
        arr, west, south, east, north, nodata=raster.nodata, srs_wkt=rio_crs(raster.crs).to_wkt()
    )


@contextmanager
def _open_source(raster: str | Path | RasterArray, band: int) -> Iterator[tuple[Any, Any, str]]:
    """An exactextract raster source, its CRS and a name for messages (file closed after)."""
    if isinstance(raster, RasterArray):
        nbands = 1 if raster.array.ndim == 2 else raster.array.shape[0]
        if not 1 <= band <= nbands:
            raise RasterError(f"in-memory raster has no band {band}")
        yield _numpy_source(raster, band), rio_crs(raster.crs), "in-memory raster"
        return
    path = Path(raster)
    with open_raster(path) as src:
        if not 1 <= band <= src.count:
            raise RasterError(f"{path}: no band {band} (has {src.count})")
        yield RasterioRasterSource(src, band_idx=band), src.crs, str(path)


def _zones_in(zones: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    if not isinstance(zones, gpd.GeoDataFrame):
        raise VectorError(f"zones must be a GeoDataFrame, got {type(zones).__name__}")
    if zones.crs is None:
        raise VectorError("zones have no CRS")
    if zones.empty:
        raise VectorError("no zones given")
    return zones if zones.crs.equals(crs) else zones.to_crs(crs)


def _require_overlap(zones: gpd.GeoDataFrame, extent: Sequence[float], label: str) -> None:
    """Raise :class:`RoiOutsideData` naming the raster when no zone touches its extent."""
    if not zones.intersects(shapely.box(*extent)).any():
        raise RoiOutsideData(f"no zone intersects {label} (raster extent {tuple(extent)})")


def zonal_stats(
    raster: str | Path | RasterArray,
    zones: gpd.GeoDataFrame,
    *,
    stats: str | Sequence[str] = ("mean",),
    band: int = 1,
) -> gpd.GeoDataFrame:
    """One row per zone: its attributes and geometry plus one column per statistic."""
    names = _parse_stats(stats)
    clash = [n for n in names if n in zones.columns and n != "frac"]
    if clash:
        raise VectorError(f"zones already have column(s) named like statistics: {clash}")
    ops = list(dict.fromkeys(STATS[n] for n in names))
    if "frac" in ops:
        ops.append("unique")
    with _open_source(raster, band) as (source, crs, label):
        local = _zones_in(zones, crs)
        _require_overlap(local, source.extent(), label)
        try:
            result = exactextract.exact_extract(source, local, ops, output="pandas")
        except RuntimeError as exc:
            raise RasterError(f"zonal statistics failed on {label}: {exc}") from exc
    result.index = zones.index
    columns: dict[str, Any] = {}
    for name in names:
        op = STATS[name]
        if op == "frac":
            columns.update(_expand_frac(result["unique"], result["frac"], zones.index))
        else:
            columns[name] = result[op]
    out = zones.copy()
    for key, values in columns.items():
        out[key] = values
    return out


def _expand_frac(uniques: pd.Series, fracs: pd.Series, index: pd.Index) -> dict[str, pd.Series]:
    """exactextract's per-zone (class, fraction) arrays -> one ``frac_<class>`` column each."""
    classes = sorted({v for arr in uniques for v in np.asarray(arr).tolist()})
    table = {c: np.zeros(len(index)) for c in classes}
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

    def read_window(self, path: str | Path, *, band: int = 1) -> np.ndarray:
        """Read only the window the zones cover from a raster on this grid."""
        with open_raster(path) as src:
            self.check_grid(src.transform, (src.height, src.width), name=str(path))
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


def zone_coverage(raster: str | Path | RasterArray, zones: gpd.GeoDataFrame) -> ZoneCoverage:
    """Compute once which cells of the raster's grid each zone covers, and by how much.

    Only the grid matters (values are never read): exactextract runs over a zero-stride
    array of the grid's shape, so no raster I/O happens here.
    """
    if isinstance(raster, RasterArray):
        transform, shape, crs, label = raster.transform, raster.shape, raster.crs, "raster"
    else:
        with open_raster(raster) as src:
            transform, shape, crs = src.transform, (src.height, src.width), src.crs
        label = str(raster)
    grid = RasterArray(np.broadcast_to(np.uint8(1), shape), transform, crs, None)
    local = _zones_in(zones, rio_crs(crs))
    try:
        result = exactextract.exact_extract(
            _numpy_source(grid, 1), local, ["cell_id", "coverage"], output="pandas"
        )
    except RuntimeError as exc:
        raise RasterError(f"coverage computation failed on {label}: {exc}") from exc
    cells = [np.asarray(c, dtype="int64") for c in result["cell_id"]]
    weights = [np.asarray(c, dtype="float64") for c in result["coverage"]]
    lengths = np.array([len(c) for c in cells])
    zone = np.repeat(np.arange(len(cells)), lengths)
    flat = np.concatenate(cells) if cells else np.zeros(0, "int64")
    weight = np.concatenate(weights) if weights else np.zeros(0)
    rows, cols = shape
    if flat.size == 0:
        raise GeoInputError(f"no zone overlaps {label} ({_bounds(transform, rows, cols)})")
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
