"""Vector operations: read/write, clip to an ROI, spatial join, nearest distance, dissolve.

Distances are computed in metres in an explicit projected CRS: the one given, or the local
UTM zone estimated from the features (never in degrees). Files are read with pyogrio and
written as GeoParquet (GeoPackage or GeoJSON on request) to a temp name, then renamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from terrapipe.errors import RoiOutsideData, VectorError
from terrapipe.geo.crs import parse_crs
from terrapipe.geo.naming import slugify
from terrapipe.geo.roi import ROI
from terrapipe.store.atomic import atomic_path

__all__ = [
    "clip_vector",
    "dissolve",
    "metric_crs",
    "nearest_distance",
    "read_vector",
    "spatial_join",
    "write_vector",
]

_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}
_PARQUET = {".parquet", ".geoparquet"}


def read_vector(path: str | Path, *, layer: str | int | None = None) -> gpd.GeoDataFrame:
    """Read a vector file (GeoParquet, or anything pyogrio reads); errors name the file."""
    p = Path(path)
    if not p.exists():
        raise VectorError(f"vector file not found: {p}")
    try:
        if p.suffix.lower() in _PARQUET:
            gdf = gpd.read_parquet(p)
        else:
            gdf = gpd.read_file(p, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio/pyarrow raise many unrelated types
        raise VectorError(f"not a readable vector file: {p} ({exc})") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise VectorError(f"no geometry column in {p}")
    return gdf


def write_vector(gdf: gpd.GeoDataFrame, path: str | Path, *, driver: str | None = None) -> Path:
    """Write GeoParquet (by default), GeoPackage or GeoJSON (EPSG:4326), atomically."""
    dest = Path(path)
    suffix = dest.suffix.lower()
    if driver is None and suffix not in _PARQUET and suffix not in _DRIVERS:
        raise VectorError(f"unknown vector format for {dest} (use .parquet, .gpkg or .geojson)")
    with atomic_path(dest) as tmp:
        if driver is None and suffix in _PARQUET:
            gdf.to_parquet(tmp, index=False, geometry_encoding="WKB", write_covering_bbox=True)
        else:
            drv = driver or _DRIVERS[suffix]
            out = gdf
            if drv == "GeoJSON" and gdf.crs is not None and not gdf.crs.equals(CRS(4326)):
                out = gdf.to_crs(4326)  # RFC 7946: GeoJSON is WGS 84
            layer = {"layer": slugify(dest.stem)} if drv == "GPKG" else {}
            out.to_file(tmp, driver=drv, engine="pyogrio", **layer)
    return dest


def _require_crs(gdf: gpd.GeoDataFrame, what: str) -> CRS:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise VectorError(f"{what}: expected a GeoDataFrame, got {type(gdf).__name__}")
    if gdf.crs is None:
        raise VectorError(f"{what} has no CRS")
    return gdf.crs


def clip_vector(
    gdf: gpd.GeoDataFrame, roi: ROI, *, cut: bool = True, name: str = "vector data"
) -> gpd.GeoDataFrame:
    """Features in the ROI (data's CRS kept): cut to it, or whole if ``cut=False``.

    An ROI outside the data's extent raises :class:`RoiOutsideData` naming ``name``. The ROI
    is cut to the data's extent (densified, in the ROI's CRS) before it is reprojected.
    """
    crs = _require_crs(gdf, name)
    if gdf.empty:
        raise RoiOutsideData(f"ROI {roi.label!r} does not intersect {name}")
    # cut the ROI to the data's extent in its own CRS first: a world box cannot go to UTM
    local = roi.clip_to(gdf.total_bounds, crs, name=name).to_crs(crs).geometry
    if not local.intersects(shapely.box(*gdf.total_bounds)):
        raise RoiOutsideData(f"ROI {roi.label!r} does not intersect {name}")
    candidates = gdf.iloc[np.sort(gdf.sindex.query(local, predicate="intersects"))]
    if not cut:
        return candidates
    return candidates.clip(local, keep_geom_type=True).sort_index()


def spatial_join(
    left: gpd.GeoDataFrame,
    right: gpd.GeoDataFrame,
    *,
    predicate: str = "intersects",
    how: str = "left",
) -> gpd.GeoDataFrame:
    """Join attributes of ``right`` onto ``left`` where geometries match (right reprojected)."""
    crs = _require_crs(left, "left layer")
    _require_crs(right, "right layer")
    if how not in ("left", "right", "inner"):
        raise VectorError(f"invalid join type: {how!r}")
    return gpd.sjoin(left, right.to_crs(crs), how=how, predicate=predicate)


def metric_crs(gdf: gpd.GeoDataFrame) -> CRS:
    """The local UTM CRS of the data's extent (metres), for distance and area computations."""
    _require_crs(gdf, "layer")
    utm = gdf.estimate_utm_crs()
    if utm is None:  # pragma: no cover - only for empty/invalid extents
        raise VectorError("cannot choose a UTM zone for an empty layer")
    return utm


def nearest_distance(
    features: gpd.GeoDataFrame,
    targets: gpd.GeoDataFrame,
    *,
    by: str | None = None,
    classes: Sequence[str] | None = None,
    crs: Any = None,
    prefix: str = "dist_",
    suffix: str = "_m",
) -> gpd.GeoDataFrame:
    """Distance in metres from each feature to the nearest target of each class (``by``).

    One column per class, ``dist_<class>_m`` (``dist_nearest_m`` without ``by``); computed in
    ``crs`` (must be projected, metres) or the local UTM zone of the features.
    """
    _require_crs(features, "features")
    _require_crs(targets, "targets")
    work_crs = parse_crs(crs) if crs is not None else metric_crs(features)
    if not work_crs.is_projected:
        raise VectorError(f"distance CRS must be projected (metres): {work_crs.to_string()}")
    unit = work_crs.axis_info[0].unit_name if work_crs.axis_info else "metre"
    if unit not in ("metre", "meter"):
        raise VectorError(f"distance CRS must use metres, not {unit}: {work_crs.to_string()}")
    src = features.to_crs(work_crs).geometry.values
    tgt = targets.to_crs(work_crs)
    if by is None:
        groups: dict[str, gpd.GeoDataFrame] = {"nearest": tgt}
    else:
        if by not in tgt.columns:
            raise VectorError(f"targets have no column {by!r}")
        names = list(classes) if classes is not None else sorted(tgt[by].dropna().unique())
        groups = {str(c): tgt[tgt[by] == c] for c in names}
    out = features.copy()
    for cls, group in groups.items():
        col = f"{prefix}{slugify(cls)}{suffix}"
        if col in out.columns:
            raise VectorError(f"features already have a column {col!r}")
        geoms = group.geometry.values
        geoms = geoms[~shapely.is_empty(geoms) & ~pd.isna(geoms)]
        if len(geoms) == 0:
            out[col] = np.nan
            continue
        tree = shapely.STRtree(geoms)
        (src_idx, _), dist = tree.query_nearest(src, return_distance=True, all_matches=False)
        values = np.full(len(src), np.nan)
        values[src_idx] = dist
        out[col] = values
    return out


def dissolve(
    gdf: gpd.GeoDataFrame, *, by: str | Sequence[str] | None = None, aggfunc: str = "first"
) -> gpd.GeoDataFrame:
    """Merge features (all, or per value of ``by``), repairing invalid geometry first."""
    _require_crs(gdf, "layer")
    fixed = gdf.copy()
    invalid = ~fixed.geometry.is_valid
    if invalid.any():
        fixed.loc[invalid, fixed.geometry.name] = shapely.make_valid(
            fixed.loc[invalid].geometry.values
        )
    if by is not None:
        missing = [c for c in ([by] if isinstance(by, str) else by) if c not in fixed.columns]
        if missing:
            raise VectorError(f"cannot dissolve by missing column(s) {missing}")
    return fixed.dissolve(by=by, aggfunc=aggfunc, as_index=False)
