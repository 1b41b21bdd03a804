from __future__ import annotations

import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from terrapipe.errors import InvalidInput
from terrapipe.geo.roi import parse_roi
from terrapipe.geo.timeseries import ndvi_from_files
from terrapipe.sample import SampleManifest, generate_sample_region, load_manifest

FILE_KEYS = {
    "admin_boundaries",
    "dem",
    "flow_accumulation",
    "drainage_lines",
    "facilities",
    "villages",
    "landcover",
}


def test_manifest_lists_every_file(sample_region: SampleManifest):
    data = json.loads((sample_region.directory / "manifest.json").read_text())
    assert set(data["files"]) == FILE_KEYS
    assert len(data["bands"]) >= 12
    assert data["seed"] == 42 and data["crs"] == "EPSG:32644"
    assert all(p.is_file() for p in sample_region.all_paths())
    total = sum(p.stat().st_size for p in sample_region.directory.rglob("*") if p.is_file())
    assert total < 20 * 1024 * 1024
    with pytest.raises(InvalidInput, match="'rivers'"):
        sample_region.path("rivers")


def test_rasters_are_valid_cogs_in_utm(sample_region: SampleManifest):
    red, nir = sample_region.band_paths(sample_region.dates[0])
    for path in [sample_region.path(k) for k in ("dem", "flow_accumulation", "landcover")] + [
        red,
        nir,
    ]:
        assert cog_validate(str(path))[0], path
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 32644 and ds.nodata is not None


def test_regenerating_a_complete_folder_is_a_no_op(sample_region: SampleManifest):
    mtimes = {p: p.stat().st_mtime_ns for p in sample_region.all_paths()}
    start = time.perf_counter()
    again = generate_sample_region(sample_region.directory, seed=42)
    assert time.perf_counter() - start < 1.0
    assert again.data == sample_region.data
    assert {p: p.stat().st_mtime_ns for p in again.all_paths()} == mtimes


def test_same_seed_same_data_other_seed_other_data(sample_region: SampleManifest, tmp_path: Path):
    other = generate_sample_region(tmp_path / "seed7", seed=7)
    with rasterio.open(sample_region.path("dem")) as a, rasterio.open(other.path("dem")) as b:
        assert not np.array_equal(a.read(1), b.read(1))
    again = generate_sample_region(tmp_path / "seed42", seed=42)
    for key in ("dem", "landcover"):
        with rasterio.open(sample_region.path(key)) as a, rasterio.open(again.path(key)) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
    for key in ("villages", "facilities", "admin_boundaries", "drainage_lines"):
        a = gpd.read_parquet(sample_region.path(key))
        b = gpd.read_parquet(again.path(key))
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
        assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()


def test_incomplete_folder_is_regenerated(tmp_path: Path):
    folder = tmp_path / "r"
    first = generate_sample_region(folder, seed=3)
    first.path("villages").unlink()
    assert load_manifest(folder) is None
    again = generate_sample_region(folder, seed=3)
    assert again.path("villages").is_file()


def test_bad_seed_is_named(tmp_path: Path):
    with pytest.raises(InvalidInput, match="seed"):
        generate_sample_region(tmp_path, seed=-1)


def test_admin_units_and_accent_insensitive_lookup(sample_region: SampleManifest):
    admin = gpd.read_parquet(sample_region.path("admin_boundaries"))
    assert {"state", "district", "block"} <= set(admin.columns)
    assert admin["state"].nunique() == 2
    assert admin.groupby("state")["district"].nunique().min() >= 2
    assert any(not name.isascii() for name in admin["district"])
    assert admin.is_valid.all()
    utm = admin.to_crs(32644)
    assert utm.area.sum() == pytest.approx(utm.union_all().area, rel=1e-6)  # no overlaps
    assert utm.union_all().area == pytest.approx(20_000**2, rel=1e-6)  # full cover
    roi = parse_roi("NARMADA PRADESH/balagiri/LANJI", boundaries=admin)
    assert roi.label == sample_region.data["example_roi"]


def test_dem_has_valleys_where_drainage_runs(sample_region: SampleManifest):
    lines = gpd.read_parquet(sample_region.path("drainage_lines"))
    assert lines["order"].max() >= 3 and (lines["order"] >= 1).all()
    with rasterio.open(sample_region.path("dem")) as ds:
        dem = ds.read(1)
        assert lines.crs == ds.crs
        coords = np.array([c for g in lines[lines["order"] >= 2].geometry for c in g.coords])
        rows, cols = rasterio.transform.rowcol(ds.transform, coords[:, 0], coords[:, 1])
    rows, cols = np.asarray(rows), np.asarray(cols)
    with rasterio.open(sample_region.path("flow_accumulation")) as ds:
        acc = ds.read(1)
    assert acc[rows, cols].min() >= sample_region.data["stream_threshold_cells"]
    inner = (cols >= 6) & (cols < dem.shape[1] - 6)
    rows, cols = rows[inner], cols[inner]
    side = (dem[rows, cols - 6] + dem[rows, cols + 6]) / 2  # 240 m to either side
    assert (dem[rows, cols] < side).mean() > 0.8


def test_facilities_and_villages(sample_region: SampleManifest):
    fac = gpd.read_parquet(sample_region.path("facilities"))
    assert {"school", "clinic", "market"} <= set(fac["kind"])
    vil = gpd.read_parquet(sample_region.path("villages"))
    assert len(vil) >= 50 and vil.is_valid.all() and vil["block"].notna().all()
    assert (vil.geometry.geom_type == "Polygon").all()


def test_ndvi_follows_distinct_seasonal_curves(sample_region: SampleManifest):
    with rasterio.open(sample_region.path("landcover")) as ds:
        lc = ds.read(1)
    curves: dict[int, list[float]] = {1: [], 2: [], 3: []}
    for when in sample_region.dates:
        values = ndvi_from_files(*sample_region.band_paths(when)).array
        for cls in curves:
            curves[cls].append(float(np.nanmean(values[lc == cls])))
    crop, tree, shrub = (np.array(curves[k]) for k in (1, 2, 3))
    assert np.ptp(crop) > 0.4 and np.ptp(tree) < 0.25 and np.ptp(shrub) < np.ptp(crop)
    assert crop[[1, 7, 8]].min() > crop[4] + 0.25  # rabi (Feb) and kharif (Aug-Sep) peaks
    assert tree.mean() > shrub.mean() and tree[4] > shrub[4] > crop[4]  # dry May
    assert int(np.argmax(crop)) in (7, 8)
