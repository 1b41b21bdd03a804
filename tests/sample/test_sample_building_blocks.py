"""The five region workflows' science, run on the sample region for one block.

Not the workflows themselves (they live in terrapipe.pipelines): this checks that the geo
functions compose on the sample data, across its mixed CRSs, with sensible results.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from terrapipe.geo.hydrology import (
    ORDER_NODATA,
    flow_accumulation,
    flow_directions,
    order_area_by_zone,
    strahler_order,
    stream_lines,
    stream_mask,
)
from terrapipe.geo.naming import output_path
from terrapipe.geo.raster import RasterArray, clip_dataset, clip_raster, open_raster, write_cog
from terrapipe.geo.roi import parse_roi
from terrapipe.geo.timeseries import date_zone_means, ndvi_from_files, plot_series, series_table
from terrapipe.geo.vector import clip_vector, nearest_distance, read_vector, write_vector
from terrapipe.geo.zonal import zone_coverage


@pytest.fixture(scope="module")
def roi(sample_region):
    admin = read_vector(sample_region.path("admin_boundaries"))
    return parse_roi(sample_region.data["example_roi"], boundaries=admin)


def test_drainage_lines_and_catchment(sample_region, roi, tmp_path: Path):
    lines = clip_vector(read_vector(sample_region.path("drainage_lines")), roi)
    assert len(lines) > 5 and lines.crs.to_epsg() == 32644
    assert lines.union_all().within(roi.to_crs(32644).geometry.buffer(1e-6))
    dest = write_vector(lines, output_path(tmp_path, "drainage-lines", roi, 1, "parquet"))
    assert dest.name == "drainage_lines_narmada_pradesh_balagiri_lanji_v1.parquet"
    cog = clip_raster(sample_region.path("flow_accumulation"), roi, tmp_path / "acc.tif")
    assert cog_validate(str(cog))[0]


def test_facilities_proximity(sample_region, roi):
    villages = clip_vector(read_vector(sample_region.path("villages")), roi, cut=False)
    facilities = read_vector(sample_region.path("facilities"))
    out = nearest_distance(villages, facilities, by="kind")
    cols = [f"dist_{k}_m" for k in sample_region.data["facility_kinds"]]
    assert set(cols) <= set(out.columns) and len(out) > 3
    assert (out[cols] >= 0).all().all() and (out[cols] < 20_000).all().all()


def test_stream_order_from_clipped_dem(sample_region, roi):
    with open_raster(sample_region.path("dem")) as src:
        dem = clip_dataset(src, roi)
    flw = flow_directions(dem.array[0], transform=dem.transform, nodata=dem.nodata)
    acc = flow_accumulation(flw)
    order = strahler_order(flw, stream_mask(acc, threshold=300))
    assert order[order != ORDER_NODATA].max() >= 2
    lines = stream_lines(flw, order, crs=dem.crs, accumulation=acc)
    assert set(lines["order"]) >= {1, 2}
    villages = read_vector(sample_region.path("villages"))
    zones = clip_vector(villages, roi).reset_index(drop=True)
    pct = order_area_by_zone(RasterArray(order, dem.transform, dem.crs, ORDER_NODATA), zones)
    assert ((pct["pct_order_1"] >= 0) & (pct["pct_order_1"] <= 100)).all()


def test_ndvi_series_per_village(sample_region, roi, tmp_path: Path):
    villages = clip_vector(read_vector(sample_region.path("villages")), roi)
    red0, _ = sample_region.band_paths(sample_region.dates[0])
    cov = zone_coverage(red0, villages)
    frames = []
    for when in sample_region.dates:
        red, nir = sample_region.band_paths(when)
        frames.append(
            date_zone_means(ndvi_from_files(red, nir, window=cov.window).array, cov, when=when)
        )
    table = series_table(frames)
    assert len(table) == len(villages) * len(sample_region.dates)
    seen = table["valid_fraction"] > 0  # a village under cloud on a date has no mean
    assert table.loc[seen, "ndvi_mean"].between(-0.2, 1).all()
    assert table.loc[~seen, "ndvi_mean"].isna().all() and seen.mean() > 0.8
    png = plot_series(table, tmp_path / "ndvi.png")
    assert png.stat().st_size > 1000
    ndvi_cog = write_cog(ndvi_from_files(red0, _), tmp_path / "ndvi0.tif")
    with rasterio.open(ndvi_cog) as ds:
        assert np.isnan(ds.nodata)
    gpd.GeoDataFrame(villages).to_parquet(tmp_path / "v.parquet")
