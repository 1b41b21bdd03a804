"""Test rasters written by rasterio directly, never by the code under test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin


def write_geotiff(
    path: Path,
    values: np.ndarray,
    *,
    crs: str,
    origin: tuple[float, float],
    res: float,
    nodata: float,
) -> Path:
    """A one-band GeoTIFF of ``values`` with its top-left corner at ``origin``."""
    height, width = values.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype=values.dtype,
        crs=crs,
        transform=from_origin(*origin, res, res),
        nodata=nodata,
    ) as dst:
        dst.write(values, 1)
    return path
