from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine

from terrapipe.errors import GeoInputError, GridMismatch
from terrapipe.geo.raster import RasterArray
from terrapipe.geo.timeseries import (
    date_zone_means,
    ndvi,
    ndvi_for_roi,
    ndvi_from_files,
    plot_series,
    region_mean,
    series_table,
)
from terrapipe.geo.zonal import zone_coverage

UTM = "EPSG:32644"
T = Affine(10, 0, 0, 0, -10, 100)


def test_ndvi_scale_nodata_and_zero_division():
    red = np.array([[1000, 0, 500, 2000]], "uint16")
    nir = np.array([[3000, 4000, 0, 2000]], "uint16")
    out = ndvi(red, nir, scale=0.0001, red_nodata=0)
    assert out.dtype == np.float32
    assert out[0, 0] == pytest.approx((0.3 - 0.1) / (0.3 + 0.1))
    assert np.isnan(out[0, 1])  # red nodata
    assert out[0, 2] == pytest.approx(-1.0)  # NIR 0 is a value here, not nodata
    assert out[0, 3] == pytest.approx(0.0)
    zero = ndvi(np.zeros((2, 2)), np.zeros((2, 2)))
    assert np.isnan(zero).all()  # 0/0 is NaN, never a warning or inf
    offset = ndvi(np.array([100.0]), np.array([100.0]), scale=1.0, offset=-100.0)
    assert np.isnan(offset[0])


def test_ndvi_shape_mismatch_and_bad_scale():
    with pytest.raises(GridMismatch, match="shapes differ"):
        ndvi(np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(GeoInputError, match="scale"):
        ndvi(np.ones(2), np.ones(2), scale=0)


def test_ndvi_from_files_uses_file_scale_and_checks_grids(make_tif, tmp_path: Path):
    red = np.full((10, 10), 1000, "uint16")
    nir = np.full((10, 10), 3000, "uint16")
    red[0, 0] = 0
    r = make_tif("red.tif", red, transform=T, nodata=0)
    n = make_tif("nir.tif", nir, transform=T, nodata=0)
    for path in (r, n):
        with rasterio.open(path, "r+") as ds:
            ds.scales = [0.0001]
    out = ndvi_from_files(r, n)
    assert np.isnan(out.array[0, 0]) and out.array[5, 5] == pytest.approx(0.5)
    other = make_tif("nir_shifted.tif", nir, transform=Affine(10, 0, 5, 0, -10, 100), nodata=0)
    with pytest.raises(GridMismatch, match=r"red.tif.*nir_shifted.tif"):
        ndvi_from_files(r, other)
    small = make_tif("nir_small.tif", nir[:5], transform=T, nodata=0)
    with pytest.raises(GridMismatch, match="nir_small.tif"):
        ndvi_from_files(r, small)


def test_series_per_zone_and_date(tmp_path: Path):
    zones = gpd.GeoDataFrame(
        {"name": ["west", "east"]},
        geometry=[shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)],
        crs=UTM,
    )
    grid = RasterArray(np.zeros((10, 10), "float32"), T, UTM, float("nan"))
    cov = zone_coverage(grid, zones)
    frames = []
    for month in (3, 1, 2):  # out of order on purpose
        values = np.zeros((10, 10), "float32")
        values[:, :5] = 0.1 * month
        values[:, 5:] = 0.5
        values[0, 5:] = np.nan  # clouds over the first row of the east zone
        frames.append(date_zone_means(values, cov, when=date(2024, month, 15)))
    table = series_table(frames)
    assert list(table.columns) == ["zone", "date", "ndvi_mean", "valid_fraction"]
    west = table[table.zone == 0]
    assert west["date"].dt.month.tolist() == [1, 2, 3]
    np.testing.assert_allclose(west["ndvi_mean"], [0.1, 0.2, 0.3], rtol=1e-6)
    east = table[table.zone == 1]
    np.testing.assert_allclose(east["ndvi_mean"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(east["valid_fraction"], 0.9)
    with pytest.raises(GeoInputError, match="2024-01-15"):
        series_table([*frames, frames[1]])
    assert region_mean(np.array([np.nan, 1.0, 3.0])) == 2.0
    png = plot_series(table, tmp_path / "chart.png", labels={0: "west", 1: "east"})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_needs_the_columns(tmp_path: Path):
    with pytest.raises(GeoInputError, match="'ndvi_mean'"):
        plot_series(pd.DataFrame({"zone": [1], "date": [1]}), tmp_path / "x.png")


def test_ndvi_for_roi_reads_the_window_and_writes_a_cog(make_tif, tmp_path: Path):
    from rio_cogeo.cogeo import cog_validate

    from terrapipe.geo.raster import write_cog
    from terrapipe.geo.roi import make_roi

    red = make_tif("r.tif", np.full((10, 10), 1000, "uint16"), transform=T, nodata=0)
    nir = make_tif("n.tif", np.full((10, 10), 3000, "uint16"), transform=T, nodata=0)
    tri = shapely.Polygon([(20, 80), (63, 80), (20, 37)])
    out = ndvi_for_roi(red, nir, make_roi(tri, UTM, label="t", kind="wkt"))
    assert out.array.shape == (5, 5) and out.transform.c == 20 and out.transform.f == 80
    assert np.nanmax(out.array) == pytest.approx(0.5) and np.isnan(out.array[-1, -1])
    path = write_cog(out, tmp_path / "ndvi.tif")
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as ds:
        assert np.isnan(ds.nodata) and ds.crs.to_epsg() == 32644
