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
from tests.rasters import write_geotiff

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
    path = write_geotiff(tmp_path / "values.tif", values, crs=CRS, origin=ORIGIN, res=10, nodata=-1)
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


# -- issue 9.3: point zones take the value of their cell ------------------------------------


def test_zonal_stats_over_points_equal_rasterio_sample(cli, tmp_path, raster) -> None:
    path, values = raster
    x0, y0 = ORIGIN
    rng = np.random.default_rng(11)
    xy = [(x0 + rng.uniform(0, 100), y0 - rng.uniform(0, 100)) for _ in range(12)]
    xy.append((x0 + 55.0, y0 - 5.0))  # on the nodata cell (row 0, col 5)
    xy.append((x0 + 500.0, y0 + 500.0))  # off the raster
    with rasterio.open(path, "r+") as dst:
        block = dst.read(1)
        block[0, 5] = -1
        dst.write(block, 1)
    pts = gpd.GeoDataFrame({"pid": range(len(xy))}, geometry=[Point(p) for p in xy], crs=CRS)
    pts_path = tmp_path / "points.gpkg"
    pts.to_file(pts_path)
    code, doc = cli_json(
        cli,
        "run",
        "zonal-stats",
        "-p",
        f"raster={path}",
        "-p",
        f"zones={pts_path}",
        "-p",
        "stats=mean,min,max,count",
    )
    assert code == 0, doc
    layer = doc["nodes"]["zonal-stats"]["outputs"]["layer"]
    table = gpd.read_parquet(layer["files"][0]).set_index("pid")
    with rasterio.open(path) as src:
        sampled = [float(v[0]) for v in src.sample(xy[:-1], indexes=1)]
    for pid, value in enumerate(sampled):
        row = table.loc[pid]
        if value == -1:  # nodata: no valid cell
            assert row["count"] == 0 and np.isnan(row["mean"])
        else:
            assert row["mean"] == row["min"] == row["max"] == pytest.approx(value)
            assert row["count"] == 1
    outside = table.loc[len(xy) - 1]
    assert np.isnan(outside["mean"]) and np.isnan(outside["count"])
    assert layer["properties"]["zones_without_data"] == 2
    assert "outside" in doc["stderr"] and "zone" in doc["stderr"]


# -- issue 9.4: nodata=VALUE overrides or supplies the raster's tag --------------------------


def _landsat_like(path, *, tag=None):
    """uint16 DNs with a 0 fill border and no nodata tag, like a Landsat Level-1 band."""
    rng = np.random.default_rng(4)
    dn = rng.integers(5000, 30000, (40, 40)).astype("uint16")
    dn[:, :12] = 0  # fill
    dn[30:, :] = 0
    dn[5, 20] = 7  # a valid value that is the tag of the override test
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=40,
        height=40,
        count=1,
        dtype="uint16",
        crs=CRS,
        transform=from_origin(*ORIGIN, 30, 30),
        nodata=tag,
    ) as dst:
        dst.write(dn, 1)
    return dn


def _with_tag(src_path, dest, nodata):
    with rasterio.open(src_path) as src:
        profile = src.profile | {"nodata": nodata}
        with rasterio.open(dest, "w", **profile) as dst:
            dst.write(src.read())
    return dest


@pytest.mark.parametrize("tag", [None, 7], ids=["no-tag", "wrong-tag"])
def test_zonal_stats_nodata_override_equals_exactextract(cli, tmp_path, tag) -> None:
    import exactextract

    path = tmp_path / "LC08_B4.tif"
    dn = _landsat_like(path, tag=tag)
    x0, y0 = ORIGIN
    zones = gpd.GeoDataFrame(
        {"name": ["west", "all", "skew"]},
        geometry=[
            box(x0, y0 - 600, x0 + 600, y0),  # rows 0-19, cols 0-19 (cols 0-11 fill)
            box(x0, y0 - 1200, x0 + 1200, y0),
            box(x0 + 100, y0 - 1000, x0 + 800, y0 - 130),  # not on cell edges
        ],
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
        "stats=mean,count,min",
        "-p",
        "nodata=0",
    )
    assert code == 0, doc
    table = gpd.read_parquet(doc["nodes"]["zonal-stats"]["outputs"]["layer"]["files"][0])
    tagged = _with_tag(path, tmp_path / "tagged.tif", 0)
    ref = exactextract.exact_extract(str(tagged), zones, ["mean", "count", "min"], output="pandas")
    for col in ("mean", "count", "min"):
        assert table[col].tolist() == pytest.approx(ref[col].tolist())
    west = dn[0:20, 0:20]
    assert table["mean"].iloc[0] == pytest.approx(west[west != 0].mean())
    assert table["min"].iloc[1] == 7  # the old tag value counts as data now
    # without the override the fill zeros are averaged in
    code, doc = cli_json(
        cli, "run", "zonal-stats", "-p", f"raster={path}", "-p", f"zones={zones_path}"
    )
    plain = gpd.read_parquet(doc["nodes"]["zonal-stats"]["outputs"]["layer"]["files"][0])
    assert plain["mean"].iloc[0] < table["mean"].iloc[0]


def test_clip_raster_nodata_supplies_the_tag(cli, tmp_path) -> None:
    path = tmp_path / "LC08_B5.tif"
    dn = _landsat_like(path)
    x0, y0 = ORIGIN
    roi = f"SRID=32644;POLYGON(({x0} {y0 - 1050}, {x0 + 900} {y0 - 1050}, {x0 + 900} {y0}, " + (
        f"{x0} {y0}, {x0} {y0 - 1050}))"
    )
    code, doc = cli_json(
        cli, "run", "clip-raster", "-p", f"raster={path}", "-p", f"roi={roi}", "-p", "nodata=0"
    )
    assert code == 0, doc
    with rasterio.open(doc["nodes"]["clip-raster"]["outputs"]["layer"]["files"][0]) as out:
        assert out.nodata == 0
        clipped = out.read(1, masked=True)
    with rasterio.open(path) as src:
        direct = src.read(1, window=((0, 35), (0, 30)))
    expected = np.ma.masked_equal(direct, 0)
    np.testing.assert_array_equal(clipped.mask, expected.mask)
    np.testing.assert_array_equal(clipped.compressed(), expected.compressed())
    assert dn[0:35, 0:30].shape == clipped.shape


# -- issue 9.5 / 9.6: world-sized ROIs and zones over a UTM scene ---------------------------


def _utm_scene(path, crs="EPSG:32719", origin=(335000.0, 8884000.0), size=200, res=1000.0):
    """A float raster in a South-American UTM zone (Peru/Brazil/Bolivia meet near here)."""
    values = np.random.default_rng(8).uniform(0, 100, (size, size)).astype("float32")
    write_geotiff(path, values, crs=crs, origin=origin, res=res, nodata=-9999)
    return values


@pytest.mark.parametrize("roi", ["-180,-90,180,90", "-180,-85,180,85", "-120,-80,0,0"])
def test_clip_raster_world_bbox_keeps_the_whole_utm_scene(cli, tmp_path, roi) -> None:
    path = tmp_path / "scene.tif"
    values = _utm_scene(path)
    code, doc = cli_json(cli, "run", "clip-raster", "-p", f"raster={path}", "-p", f"roi={roi}")
    assert code == 0, doc
    with rasterio.open(doc["nodes"]["clip-raster"]["outputs"]["layer"]["files"][0]) as out:
        clipped = out.read(1)
        assert out.crs == "EPSG:32719"
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(clipped, src.read(1, window=((0, 200), (0, 200))))
    np.testing.assert_array_equal(clipped, values)


def _naturalearth():
    pyogrio = pytest.importorskip("pyogrio")
    from pathlib import Path

    shp = (
        Path(pyogrio.__file__).parent / "tests/fixtures/naturalearth_lowres/naturalearth_lowres.shp"
    )
    if not shp.exists():
        pytest.skip(f"pyogrio ships no Natural Earth fixture here ({shp})")
    return shp


def test_zonal_stats_with_all_natural_earth_countries(cli, tmp_path) -> None:
    import exactextract
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    shp = _naturalearth()
    path = tmp_path / "scene.tif"
    _utm_scene(path)
    code, doc = cli_json(
        cli,
        "run",
        "zonal-stats",
        "-p",
        f"raster={path}",
        "-p",
        f"zones={shp}",
        "-p",
        "stats=mean,count,max",
    )
    assert code == 0, doc
    table = gpd.read_parquet(doc["nodes"]["zonal-stats"]["outputs"]["layer"]["files"][0])
    countries = gpd.read_file(shp)
    assert len(table) == len(countries) == 177
    # the scene's outline in lon/lat, densified by GDAL, decides which countries it touches
    with rasterio.open(path) as src:
        outline = shape(
            transform_geom(src.crs, "EPSG:4326", mapping(box(*src.bounds)), precision=-1)
        )
    touching = countries[countries.intersects(outline)]
    assert sorted(touching["name"]) == ["Bolivia", "Brazil", "Peru"]
    ref = exactextract.exact_extract(
        str(path), touching.to_crs("EPSG:32719"), ["mean", "count", "max"], output="pandas"
    )
    got = table.set_index("name").loc[touching["name"]]
    for col in ("mean", "count", "max"):
        assert got[col].tolist() == pytest.approx(ref[col].tolist(), rel=1e-9)
    others = table[~table["name"].isin(touching["name"])]
    assert others[["mean", "count", "max"]].isna().all().all()
    assert "Antarctica" in set(others["name"]) and "Fiji" in set(others["name"])


# -- issue 10.7: a header claiming 10^6 x 10^6 pixels ---------------------------------------


@pytest.fixture
def huge(tmp_path):
    """A sparse tiled GeoTIFF of 10^6 x 10^6 uint8 pixels (under 1 MB on disk, no data)."""
    path = tmp_path / "huge.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=10**6,
        height=10**6,
        count=1,
        dtype="uint8",
        crs=CRS,
        transform=from_origin(*ORIGIN, 1, 1),
        tiled=True,
        blockxsize=4096,
        blockysize=4096,
        sparse_ok=True,
        bigtiff="YES",
        nodata=255,
    ):
        pass
    assert path.stat().st_size < 2_000_000
    return path


def test_clip_raster_over_a_huge_header_is_refused_by_the_budget(cli, tmp_path, huge) -> None:
    code, doc = cli_json(
        cli, "run", "clip-raster", "-p", f"raster={huge}", "-p", "roi=-180,-90,180,90"
    )
    assert code == 2, doc
    err = doc["stderr"]
    assert "huge.tif" in err and "1000000 x 1000000" in err and "931.3 GiB" in err
    assert "Traceback" not in err and "MemoryError" not in err


def test_zonal_stats_over_a_huge_header_is_refused_fast_or_bounded(cli, tmp_path, huge) -> None:
    import subprocess
    import sys
    import time

    x0, y0 = ORIGIN
    whole = gpd.GeoDataFrame(
        {"name": ["all"]}, geometry=[box(x0, y0 - 10**6, x0 + 10**6, y0)], crs=CRS
    )
    whole.to_file(tmp_path / "whole.gpkg")
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "terrapipe.cli.main", "run", "zonal-stats"]
        + ["-p", f"raster={huge}", "-p", f"zones={tmp_path / 'whole.gpkg'}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "huge.tif" in proc.stderr and "zone" in proc.stderr and "GiB" in proc.stderr
    assert time.monotonic() - start < 60
    # a small zone inside the same raster is fine: bounded time, exact answer
    small = gpd.GeoDataFrame(
        {"name": ["small"]}, geometry=[box(x0 + 5000, y0 - 5020, x0 + 5010, y0 - 5000)], crs=CRS
    )
    small.to_file(tmp_path / "small.gpkg")
    start = time.monotonic()
    code, doc = cli_json(
        cli,
        "run",
        "zonal-stats",
        "-p",
        f"raster={huge}",
        "-p",
        f"zones={tmp_path / 'small.gpkg'}",
        "-p",
        "stats=count",
        "-p",
        "nodata=1",
    )
    assert code == 0, doc
    assert time.monotonic() - start < 30
    table = gpd.read_parquet(doc["nodes"]["zonal-stats"]["outputs"]["layer"]["files"][0])
    assert table["count"].iloc[0] == pytest.approx(200)  # 10 x 20 cells of 1 m, all 0 = valid


def test_raster_memory_budget_setting_applies(cli, tmp_path, raster, monkeypatch) -> None:
    path, _ = raster
    monkeypatch.setenv("TERRAPIPE_RASTER_MEMORY_BUDGET", "100")
    code, doc = cli_json(
        cli, "run", "clip-raster", "-p", f"raster={path}", "-p", "roi=-180,-90,180,90"
    )
    assert code == 2 and "values.tif" in doc["stderr"] and "budget" in doc["stderr"]


@pytest.mark.parametrize("roi", ["-180,-90,180,90", "-180,-85,180,85"])
def test_clip_vector_world_bbox_keeps_every_feature(cli, tmp_path, roi) -> None:
    x0, y0 = ORIGIN
    feats = gpd.GeoDataFrame(
        {"key": [1, 2, 3]},
        geometry=[Point(x0, y0), box(x0 + 10, y0 - 50, x0 + 90, y0 - 10), Point(x0 + 3e4, y0)],
        crs=CRS,
    )
    path = tmp_path / "feats.gpkg"
    feats.to_file(path)
    code, doc = cli_json(cli, "run", "clip-vector", "-p", f"vector={path}", "-p", f"roi={roi}")
    assert code == 0, doc
    out = gpd.read_parquet(doc["nodes"]["clip-vector"]["outputs"]["layer"]["files"][0])
    assert out["key"].tolist() == [1, 2, 3]
    assert out.geometry.geom_equals(feats.geometry).all()
