"""Test data shared by the transfer tests: rasters and catalog entries, made on the fly."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.shutil import copy as rio_copy
from rasterio.transform import from_origin
from shapely.geometry import box

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets

REDIS_URL = "redis://127.0.0.1:6379/0"


def write_raster(path: Path, driver: str = "GTiff", size: int = 600, dtype="int16") -> np.ndarray:
    """A random raster with a nodata corner; NetCDF and JPEG2000 through a GeoTIFF copy."""
    rng = np.random.default_rng(42)
    data = rng.integers(1, 1000, size=(1, size, size)).astype(dtype)
    data[0, :10, :10] = 0
    gtiff = path if driver == "GTiff" else path.with_suffix(".src.tif")
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype=dtype,
        crs="EPSG:32643",
        transform=from_origin(500000, 2000000, 30, 30),
        nodata=0,
    )
    with rasterio.open(gtiff, "w", **profile) as dst:
        dst.write(data)
    if driver != "GTiff":
        options = {"QUALITY": 100, "REVERSIBLE": "YES"} if driver == "JP2OpenJPEG" else {}
        rio_copy(gtiff, path, driver=driver, **options)
        gtiff.unlink()
    return data


def seed(db, http_server, n: int = 3) -> list[bytes]:
    bodies = []
    datasets = []
    for i in range(n):
        body = hashlib.sha512(str(i).encode()).digest() * 100
        bodies.append(body)
        http_server.state.files[f"scene{i}.nc"] = body
        datasets.append(
            Dataset(
                entry_id=f"S2_SCENE_{i}",
                collection="s2",
                time_start=datetime(2024, 1 + i, 5, tzinfo=UTC),
                footprint=box(77 + i, 12, 77.5 + i, 12.5),
                uris=(
                    DatasetURI(http_server.url("pub", f"missing{i}.nc")),
                    DatasetURI(
                        http_server.url("pub", f"scene{i}.nc"),
                        size=len(body),
                        checksum="sha256:" + hashlib.sha256(body).hexdigest(),
                    ),
                    DatasetURI("s3://bucket/unsupported.nc", role="data"),
                ),
            )
        )
    save_datasets(db, datasets)
    return bodies
