"""NDVI from red/NIR, per-date and per-zone series, and a PNG chart.

NDVI = (NIR - red) / (NIR + red) on reflectances (digital numbers times ``scale`` plus
``offset``). Cells that are nodata in either band, or where NIR + red == 0, are NaN.
A per-zone series is a long table (``zone``, ``date``, ``ndvi_mean``, ``valid_fraction``)
built one date at a time from a :class:`~terrapipe.geo.zonal.ZoneCoverage`, so adding a
date only computes that date.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio.features

from terrapipe.errors import GeoInputError, GridMismatch
from terrapipe.geo.raster import RasterArray, check_budget, open_raster, roi_window
from terrapipe.geo.roi import ROI
from terrapipe.geo.zonal import ZoneCoverage

__all__ = [
    "date_zone_means",
    "ndvi",
    "ndvi_for_roi",
    "ndvi_from_files",
    "plot_series",
    "region_mean",
    "series_table",
]


def ndvi(
    red: np.ndarray,
    nir: np.ndarray,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    red_nodata: float | None = None,
    nir_nodata: float | None = None,
) -> np.ndarray:
    """NDVI (float32, NaN where invalid) from red and NIR arrays of the same shape."""
    red = np.asarray(red)
    nir = np.asarray(nir)
    if red.shape != nir.shape:
        raise GridMismatch(f"red and NIR shapes differ: {red.shape} vs {nir.shape}")
    if not np.isfinite(scale) or scale == 0:
        raise GeoInputError(f"invalid scale factor: {scale!r}")
    r = red.astype("float64") * scale + offset
    n = nir.astype("float64") * scale + offset
    invalid = ~(np.isfinite(r) & np.isfinite(n))
    if red_nodata is not None:
        invalid |= red == red_nodata
    if nir_nodata is not None:
        invalid |= nir == nir_nodata
    denom = n + r
    invalid |= denom == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(invalid, np.nan, (n - r) / np.where(invalid, 1.0, denom))
    return out.astype("float32")


def ndvi_from_files(
    red_path: str | Path,
    nir_path: str | Path,
    *,
    scale: float | None = None,
    offset: float | None = None,
    window: Any = None,
    nodata: float | None = None,
    memory_budget: int | None = None,
) -> RasterArray:
    """NDVI of a red/NIR file pair on one grid (scale/offset from the files unless given).

    ``nodata`` replaces (or supplies) both bands' nodata tag, e.g. 0 for Landsat Level-1
    digital numbers. The window is checked against ``memory_budget`` bytes before reading
    (two bands plus float64 working arrays).
    """
    with open_raster(red_path) as r, open_raster(nir_path) as n:
        if (r.width, r.height) != (n.width, n.height) or not r.transform.almost_equals(n.transform):
            raise GridMismatch(
                f"red and NIR grids differ: {red_path} ({r.width}x{r.height}, "
                f"{tuple(r.transform)[:6]}) vs {nir_path} ({n.width}x{n.height}, "
                f"{tuple(n.transform)[:6]})"
            )
        if r.crs != n.crs:
            raise GridMismatch(
                f"red and NIR CRS differ: {red_path} ({r.crs}) vs {nir_path} ({n.crs})"
            )
        s = scale if scale is not None else r.scales[0]
        o = offset if offset is not None else r.offsets[0]
        if scale is None and (n.scales[0], n.offsets[0]) != (s, o):
            raise GridMismatch(f"red and NIR scale/offset differ: {red_path} vs {nir_path}")
        rows, cols = (
            (r.height, r.width) if window is None else (int(window.height), int(window.width))
        )
        itemsize = 2 * np.dtype(r.dtypes[0]).itemsize + 3 * 8
        check_budget(
            f"{red_path} and {nir_path}", rows, cols, itemsize=itemsize, budget=memory_budget
        )
        red = r.read(1, window=window)
        nir = n.read(1, window=window)
        transform = r.window_transform(window) if window is not None else r.transform
        red_nodata = r.nodata if nodata is None else nodata
        nir_nodata = n.nodata if nodata is None else nodata
        values = ndvi(red, nir, scale=s, offset=o, red_nodata=red_nodata, nir_nodata=nir_nodata)
        return RasterArray(values, transform, r.crs, float("nan"))


def ndvi_for_roi(
    red_path: str | Path,
    nir_path: str | Path,
    roi: ROI,
    *,
    scale: float | None = None,
    nodata: float | None = None,
    memory_budget: int | None = None,
) -> RasterArray:
    """NDVI over the ROI only (window read, source CRS kept; NaN outside the ROI), for COGs.

    ``nodata`` overrides the bands' nodata tag (see :func:`ndvi_from_files`).
    """
    with open_raster(red_path) as r:
        window, local = roi_window(roi, r.transform, (r.height, r.width), r.crs, name=str(red_path))
    values = ndvi_from_files(
        red_path, nir_path, scale=scale, window=window, nodata=nodata, memory_budget=memory_budget
    )
    outside = rasterio.features.geometry_mask(
        [local.geometry], out_shape=values.array.shape, transform=values.transform
    )
    array = values.array.copy()
    array[outside] = np.nan
    return RasterArray(array, values.transform, values.crs, float("nan"))


def date_zone_means(
    values: np.ndarray, coverage: ZoneCoverage, *, when: date | str, name: str = "ndvi"
) -> pd.DataFrame:
    """One date's coverage-weighted mean per zone: columns ``zone, date, <name>_mean, ...``."""
    stats = coverage.apply(values, stats=("mean", "count"))
    full = np.bincount(coverage.zone, weights=coverage.weight, minlength=coverage.n_zones)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid_fraction = np.where(full > 0, stats["count"].to_numpy() / full, 0.0)
    return pd.DataFrame(
        {
            "zone": coverage.index,
            "date": pd.Timestamp(when),
            f"{name}_mean": stats["mean"].to_numpy(),
            "valid_fraction": valid_fraction,
        }
    )


def region_mean(values: np.ndarray) -> float:
    """Mean of the valid (finite) cells of an array, NaN when none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def series_table(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-date tables into one long table sorted by zone and date."""
    frames = [f for f in frames if f is not None and not f.empty]
    if not frames:
        raise GeoInputError("no dates to build a series from")
    table = pd.concat(frames, ignore_index=True)
    dupes = table.duplicated(["zone", "date"])
    if dupes.any():
        raise GeoInputError(
            f"date(s) given twice: {sorted(table.loc[dupes, 'date'].dt.date.astype(str).unique())}"
        )
    return table.sort_values(["zone", "date"]).reset_index(drop=True)


def plot_series(
    table: pd.DataFrame,
    path: str | Path,
    *,
    value: str = "ndvi_mean",
    group: str = "zone",
    title: str = "Mean NDVI",
    max_lines: int = 12,
    labels: dict[Any, str] | None = None,
) -> Path:
    """Draw one line per group over time to a PNG (matplotlib Agg, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    for col in (value, group, "date"):
        if col not in table.columns:
            raise GeoInputError(f"series table has no column {col!r}")
    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    groups: Sequence[Any] = list(dict.fromkeys(table[group]))[:max_lines]
    for key in groups:
        rows = table[table[group] == key].sort_values("date")
        label = (labels or {}).get(key, str(key))
        ax.plot(rows["date"], rows[value], marker="o", markersize=3, linewidth=1.4, label=label)
    ax.set_title(title)
    ax.set_ylabel(value.replace("_", " "))
    ax.grid(True, alpha=0.3)
    if groups:
        ax.legend(fontsize=7, ncol=2, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(dest)
    return dest
