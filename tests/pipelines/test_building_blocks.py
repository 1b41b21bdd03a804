"""The building blocks on files a user brings, through the CLI, against numpy/shapely."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, box

CRS = "EPSG:32644"
ORIGIN = (500000.0, 2000000.0)


def cli_json(cli, *args: str) -> tuple[int, dict]:
    code, out, err = cli(*args, "--json")
    doc = json.loads(out) if out.strip().startswith("{") else {}
    doc["stderr"] = err
    return code, doc


@pytest.fixture
def raster(tmp_path):
    values = np.arange(100, dtype="float32").reshape(10, 10)
    path = tmp_path / "values.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=10,
        height=10,
        count=1,
        dtype="float32",
        crs=CRS,
        transform=from_origin(*ORIGIN, 10, 10),
        nodata=-1,
    ) as dst:
        dst.write(values, 1)
    return path, values


def test_zonal_stats_equal_numpy_on_pixel_aligned_zones(cli, tmp_path, raster) -> None:
    path, values = raster
    x0, y0 = ORIGIN
    # zones aligned to cell edges: rows 0-4 x cols 0-4, and rows 2-9 x cols 5-9
    zones = gpd.GeoDataFrame(
        {"name": ["nw", "east"]},
        geometry=[box(x0, y0 - 50, x0 + 50, y0), box(x0 + 50, y0 - 100, x0 + 100, y0 - 20)],
        crs=CRS,
    )
    zones_path = tmp_path / "zones.gpkg"
    zones.to_file(zones_path)
    code, doc = cli_json(
        cli,
        "run",
        "zonal-stats",
        "-p",
        f"raster={path}",
        "-p",
        f"zones={zones_path}",
        "-p",
        "stats=mean,count,max",
        "-p",
        "csv=true",
    )
    assert code == 0, doc
    files = doc["nodes"]["zonal-stats"]["outputs"]["layer"]["files"]
    table = gpd.read_parquet(files[0])
    csv = pd.read_csv(files[1])
    expected = {"nw": values[0:5, 0:5], "east": values[2:10, 5:10]}
    for _, row in table.iterrows():
        cells = expected[row["name"]]
        assert row["mean"] == pytest.approx(cells.mean())
        assert row["count"] == pytest.approx(cells.size)
        assert row["max"] == pytest.approx(cells.max())
    assert list(csv.columns) == ["name", "mean", "count", "max"]
    assert csv["mean"].tolist() == pytest.approx(table["mean"].tolist())


def test_proximity_equal_shapely_brute_force(cli, tmp_path) -> None:
    rng = np.random.default_rng(3)
    x0, y0 = ORIGIN
    feats = gpd.GeoDataFrame(
        {"fid": range(20)},
        crs=CRS,
        geometry=[Point(x0 + rng.uniform(0, 5000), y0 + rng.uniform(0, 5000)) for _ in range(20)],
    )
    kinds = ["school", "clinic"] * 10
    targets = gpd.GeoDataFrame(
        {"kind": kinds},
        crs=CRS,
        geometry=[Point(x0 + rng.uniform(0, 5000), y0 + rng.uniform(0, 5000)) for _ in range(20)],
    )
    fpath, tpath = tmp_path / "f.gpkg", tmp_path / "t.gpkg"
    feats.to_file(fpath)
    targets.to_file(tpath)
    code, doc = cli_json(
        cli,
        "run",
        "proximity",
        "-p",
        f"features={fpath}",
        "-p",
        f"targets={tpath}",
        "-p",
        "target_class=kind",
    )
    assert code == 0, doc
    out = gpd.read_parquet(doc["nodes"]["proximity"]["outputs"]["layer"]["files"][0])
    for kind in ("school", "clinic"):
        pts = targets[targets.kind == kind].geometry
        brute = [min(p.distance(t) for t in pts) for p in feats.geometry]
        assert out[f"dist_{kind}_m"].tolist() == pytest.approx(brute, abs=0.01)


def test_clip_raster_on_own_file_and_no_crs_is_bad_input(cli, tmp_path, raster) -> None:
    path, values = raster
    x0, y0 = ORIGIN
    roi = (
        f"POLYGON(({x0} {y0 - 30}, {x0 + 30} {y0 - 30}, {x0 + 30} {y0}, {x0} {y0}, {x0} {y0 - 30}))"
    )
    # the ROI is in the raster's CRS: pass it as GeoJSON-free WKT with the CRS of the data
    code, doc = cli_json(
        cli, "run", "clip-raster", "-p", f"raster={path}", "-p", f"roi=SRID=32644;{roi}"
    )
    assert code == 0, doc
    with rasterio.open(doc["nodes"]["clip-raster"]["outputs"]["layer"]["files"][0]) as src:
        np.testing.assert_array_equal(src.read(1), values[0:3, 0:3])
    bare = tmp_path / "nocrs.tif"
    with rasterio.open(bare, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.ones((4, 4), "uint8"), 1)
    code, doc = cli_json(cli, "run", "clip-raster", "-p", f"raster={bare}", "-p", "roi=0,0,1,1")
    assert code == 2
    assert "nocrs.tif" in doc["stderr"] and "CRS" in doc["stderr"]
