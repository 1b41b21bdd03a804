"""Small hand-made rasters and vectors with known answers for the geo tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

UTM = "EPSG:32644"


def write_tif(
    path: Path,
    array: np.ndarray,
    *,
    transform: Affine,
    crs: str | None = UTM,
    nodata: float | None = None,
    tiled: bool = False,
) -> Path:
    """Write a plain GeoTIFF (not via terrapipe) so tests do not depend on the code under test."""
    arr = array if array.ndim == 3 else array[np.newaxis]
    profile = {
        "driver": "GTiff",
        "height": arr.shape[1],
        "width": arr.shape[2],
        "count": arr.shape[0],
        "dtype": arr.dtype,
        "transform": transform,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    if tiled:
        profile.update(tiled=True, blockxsize=64, blockysize=64)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path


@pytest.fixture
def make_tif(tmp_path: Path):
    def make(name: str, array: np.ndarray, **kwargs) -> Path:
        return write_tif(tmp_path / name, array, **kwargs)

    return make
