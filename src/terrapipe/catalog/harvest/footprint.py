"""Footprints of files: real bounds in their CRS, densified, reprojected to EPSG:4326."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import shapely
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely.geometry import LineString, Point, box, mapping, shape
from shapely.geometry.base import BaseGeometry

from terrapipe.catalog.geometry import normalize_footprint

EDGE_POINTS = 32  # points per bbox edge, so curved edges of the reprojected footprint fit


def bounds_footprint(bounds: Sequence[float], crs: Any) -> BaseGeometry:
    """The EPSG:4326 footprint of ``bounds`` (minx, miny, maxx, maxy) given in ``crs``."""
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    src = CRS.from_user_input(crs)
    step = max(maxx - minx, maxy - miny) / EDGE_POINTS
    if maxx > minx and maxy > miny:
        rect = shapely.segmentize(box(minx, miny, maxx, maxy), step)
    elif step > 0:  # a horizontal or vertical line (e.g. a vector of aligned points)
        rect = shapely.segmentize(LineString([(minx, miny), (maxx, maxy)]), step)
    else:  # a single point
        rect = Point(minx, miny)
    if src.to_epsg() == 4326:
        return normalize_footprint(rect)
    geom = transform_geom(src, "EPSG:4326", mapping(rect), antimeridian_cutting=True)
    return normalize_footprint(shape(geom))
