"""Hydrology with pyflwdir: D8 flow directions, accumulation, streams and Strahler order.

A DEM (2-D array, affine transform, nodata) goes in; arrays on the same grid and stream
lines (a GeoDataFrame with an ``order`` attribute, in the DEM's CRS) come out. Depressions
are filled by pyflwdir's ``from_dem`` so every cell drains to an outlet at the edge.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyflwdir
from affine import Affine

from terrapipe.errors import GeoInputError, RasterError
from terrapipe.geo.crs import parse_crs
from terrapipe.geo.raster import RasterArray

__all__ = [
    "ORDER_NODATA",
    "d8_directions",
    "flow_accumulation",
    "flow_directions",
    "order_area_by_zone",
    "stream_lines",
    "stream_mask",
    "strahler_order",
]

ORDER_NODATA = 255  # nodata of the uint8 stream-order raster (0 means "not a stream")


def flow_directions(
    dem: np.ndarray, *, transform: Affine, nodata: float | None = None, latlon: bool = False
) -> pyflwdir.FlwdirRaster:
    """D8 flow directions of a DEM (depressions filled), as a pyflwdir object."""
    arr = np.asarray(dem)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise RasterError(f"DEM must be a 2-D array of at least 2x2 cells, got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise RasterError(f"DEM must be numeric, got dtype {arr.dtype}")
    data = arr.astype("float32")
    fill = -9999.0
    invalid = ~np.isfinite(data)
    if nodata is not None:
        invalid |= data == nodata
    if invalid.all():
        raise RasterError("DEM has no valid cells")
    data[invalid] = fill
    return pyflwdir.from_dem(data, nodata=fill, transform=transform, latlon=latlon)


def d8_directions(flw: pyflwdir.FlwdirRaster) -> np.ndarray:
    """The D8 direction raster (uint8, ESRI codes 1..128, 0 = pit/outlet, 247 = nodata)."""
    return flw.to_array(ftype="d8")


def flow_accumulation(flw: pyflwdir.FlwdirRaster, *, unit: str = "cell") -> np.ndarray:
    """Upstream area of every cell (``cell`` count, or ``m2``/``ha``/``km2``), -9999 outside."""
    if unit not in ("cell", "m2", "ha", "km2"):
        raise GeoInputError(f"invalid accumulation unit: {unit!r}")
    return flw.upstream_area(unit=unit)


def stream_mask(accumulation: np.ndarray, *, threshold: float) -> np.ndarray:
    """Cells whose upstream area is at least ``threshold`` (same unit as the accumulation)."""
    if not threshold > 0:
        raise GeoInputError(f"invalid stream threshold: {threshold!r} (must be > 0)")
    return np.asarray(accumulation) >= threshold


def strahler_order(flw: pyflwdir.FlwdirRaster, streams: np.ndarray) -> np.ndarray:
    """Strahler order of stream cells (uint8; 0 off the network, 255 outside the DEM)."""
    order = flw.stream_order(type="strahler", mask=streams)
    out = np.where(streams, np.clip(order, 0, 254), 0).astype("uint8")
    out[~flw.mask.reshape(flw.shape)] = ORDER_NODATA
    return out


def stream_lines(
    flw: pyflwdir.FlwdirRaster,
    order: np.ndarray,
    *,
    crs: Any,
    accumulation: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """Stream segments (confluence to confluence) as lines with an ``order`` attribute."""
    streams = (order > 0) & (order != ORDER_NODATA)
    columns = ["order", "upstream_cells"]
    if not streams.any():
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype="int64") for c in columns},
            geometry=gpd.GeoSeries([], crs=parse_crs(crs)),
        )
    kwargs: dict[str, np.ndarray] = {"strord": order.astype("int32")}
    if accumulation is not None:
        kwargs["upa"] = np.asarray(accumulation, dtype="float64")
    feats = flw.streams(mask=streams, **kwargs)
    gdf = gpd.GeoDataFrame.from_features(feats, crs=parse_crs(crs))
    gdf["order"] = gdf["strord"].astype("int64")
    if "upa" in gdf.columns:
        gdf["upstream_cells"] = gdf["upa"].astype("float64")
    else:
        gdf["upstream_cells"] = np.nan
    gdf = gdf[[*columns, "geometry"]]
    gdf = gdf[gdf.geometry.length > 0]  # pyflwdir adds a one-cell segment at each outlet
    return gdf.sort_values(["order", "upstream_cells"], ascending=[False, False]).reset_index(
        drop=True
    )


def order_area_by_zone(
    order: RasterArray, zones: gpd.GeoDataFrame, *, max_order: int | None = None
) -> gpd.GeoDataFrame:
    """Per zone, the percentage of its area covered by stream cells of each Strahler order.

    ``pct_order_<k>`` is the area of order-``k`` cells in the zone (exact coverage fractions)
    over the zone's whole polygon area; ``pct_with_data`` is the share of the zone covered by
    valid cells of the raster (below 100 where the zone leaves the raster or its ROI).
    """
    from terrapipe.geo.zonal import zonal_stats

    if order.nodata is None:
        raise RasterError("stream-order raster needs a nodata value")
    crs = parse_crs(order.crs)
    if not crs.is_projected:
        raise RasterError(f"stream-order raster must be in a projected CRS, not {crs.to_string()}")
    table = zonal_stats(order, zones, stats=["frac", "count"])
    cell_area = abs(order.transform.a * order.transform.e - order.transform.b * order.transform.d)
    zone_area = zones.geometry.to_crs(crs).area.to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        covered = np.where(zone_area > 0, table["count"].to_numpy() * cell_area / zone_area, 0.0)
    arr = order.array
    valid = arr[(arr != order.nodata) & (arr > 0)]
    top = int(max_order if max_order is not None else (valid.max() if valid.size else 0))
    out = zones.copy()
    for k in range(1, top + 1):
        col = f"frac_{k}"
        frac = table[col].to_numpy() if col in table.columns else np.zeros(len(zones))
        out[f"pct_order_{k}"] = 100.0 * frac * covered
    out["pct_with_data"] = 100.0 * np.minimum(covered, 1.0)
    return out
