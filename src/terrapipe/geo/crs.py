"""CRS parsing: one place that turns any user CRS input into a pyproj or rasterio CRS.

Every geo module (roi, raster, vector, hydrology, zonal) parses CRS values here, so a bad
value always raises the same :class:`~terrapipe.errors.RoiError` naming it.
"""

from __future__ import annotations

from typing import Any

import rasterio.crs
from pyproj import CRS
from pyproj.exceptions import CRSError

from terrapipe.errors import RoiError

__all__ = ["parse_crs", "rio_crs"]


def parse_crs(crs: Any) -> CRS:
    """A pyproj CRS from any user input (``"EPSG:32644"``, 4326, WKT, CRS); names the value."""
    if isinstance(crs, CRS):
        return crs
    if crs is None:
        raise RoiError("invalid crs: None")
    try:
        return CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as exc:
        raise RoiError(f"invalid crs: {crs!r}") from exc


def rio_crs(crs: Any) -> rasterio.crs.CRS:
    """A rasterio CRS from any CRS input (pyproj CRS, EPSG code, WKT); names a bad value."""
    if isinstance(crs, rasterio.crs.CRS):
        return crs
    return rasterio.crs.CRS.from_wkt(parse_crs(crs).to_wkt())
