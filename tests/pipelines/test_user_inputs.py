"""The region workflows on the user's own files, laid out unlike the sample folder: other
folders, other names, another CRS, other column names, Landsat-style band files without a
nodata tag, multi-band images in another band order. Results are checked against
independent computations (rasterio window reads, numpy NDVI + exactextract means)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.features
import rasterio.windows
from exactextract import exact_extract
from rasterio.warp import Resampling, calculate_default_transform, reproject

from terrapipe.sample import SampleManifest

BLOCK = ("Narmada Pradesh", "Sonpur", "Amarkantak")


def _reproject(src_path: Path, dest: Path, crs: str) -> None:
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, crs, src.width, src.height, *src.bounds
        )
        profile = src.profile | {
            "driver": "GTiff",
            "crs": crs,
            "transform": transform,
            "width": width,
            "height": height,
        }
        for key in ("blockxsize", "blockysize", "tiled", "interleave"):
            profile.pop(key, None)
        with rasterio.open(dest, "w", **profile) as out:
            reproject(
                rasterio.band(src, 1),
                rasterio.band(out, 1),
                dst_transform=transform,
                dst_crs=crs,
                resampling=Resampling.nearest,
            )


@pytest.fixture
def national(tmp_path: Path, region: SampleManifest) -> dict[str, Path]:
    """The sample's data under another layout: renamed, re-projected, other columns."""
    root = tmp_path / "national data"
    (root / "hydro" / "merit").mkdir(parents=True)
    (root / "admin").mkdir()
    upa = root / "hydro" / "merit" / "upa_national_3857.tif"
    _reproject(region.path("flow_accumulation"), upa, "EPSG:3857")
    admin = gpd.read_parquet(region.path("admin_boundaries")).rename(
        columns={"state": "ST_NAME", "district": "DT_NAME", "block": "SUBDT_NAME"}
    )
    units = root / "admin" / "census_units.gpkg"
    admin.to_crs(3857).to_file(units, driver="GPKG")
    return {"accumulation": upa, "boundaries": units}


def _run_json(cli, *args: str) -> dict:
    code, out, err = cli("run", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _layer_file(doc: dict, node: str, key: str | None = None) -> Path:
    out = doc["nodes"][node]["outputs"]
    layer = (out[key] if key else out)["layer"]
    return Path(layer["files"][0])


def test_catchment_area_on_own_raster_and_boundaries(cli, national, tp_home) -> None:
    path = "/".join(BLOCK)
    args = (
        "catchment-area",
        "-p",
        f"roi={path}",
        "-p",
        f"accumulation={national['accumulation']}",
        "-p",
        f"boundaries={national['boundaries']}",
        "-p",
        "levels=ST_NAME,DT_NAME,SUBDT_NAME",
    )
    doc = _run_json(cli, *args)
    assert doc["state"] == "succeeded"
    assert not (tp_home / "sample").exists()  # every input given: no sample region made
    out = _layer_file(doc, "clip-catchment")
    units = gpd.read_file(national["boundaries"])
    state, district, block = BLOCK
    row = units[
        (units["ST_NAME"] == state)
        & (units["DT_NAME"] == district)
        & (units["SUBDT_NAME"] == block)
    ]
    with rasterio.open(out) as clip, rasterio.open(national["accumulation"]) as src:
        assert clip.crs == src.crs  # the source CRS is kept
        data = clip.read(1, masked=True)
        window = rasterio.windows.from_bounds(*clip.bounds, transform=src.transform)
        direct = src.read(1, window=window.round_offsets().round_lengths())
        inside = ~data.mask
        assert inside.sum() > 100
        np.testing.assert_array_equal(data.data[inside], direct[inside])
        geom = row.to_crs(clip.crs).geometry.iloc[0]
        centres = rasterio.features.geometry_mask([geom], data.shape, clip.transform, invert=True)
        assert (centres & ~inside).sum() == 0
        assert (inside & ~centres).sum() <= 0.02 * inside.sum()

    # the input file is in the cache key: a rewrite reruns the clip and changes the result
    with rasterio.open(national["accumulation"], "r+") as src:
        values = src.read(1)
        src.write(np.where(values == src.nodata, values, values + 1000), 1)
    os.utime(national["accumulation"], ns=(1, 1))  # a different mtime whatever the clock
    again = _run_json(cli, *args)
    node = again["nodes"]["clip-catchment"]
    assert node["state"] == "succeeded"
    assert "upa_national_3857.tif" in node["reason"]
    with rasterio.open(_layer_file(again, "clip-catchment")) as clip:
        new = clip.read(1, masked=True)
        np.testing.assert_array_equal(new.compressed(), data.compressed() + 1000)


def test_region_inputs_hook_does_not_generate_the_sample(tp_home) -> None:
    """Listing the cache-key files must not build the sample region (only run() may)."""
    from terrapipe.core.context import Context
    from terrapipe.pipelines.catchment_area import workflow

    node = workflow.nodes["region"]
    ctx = Context(
        run_id="r",
        node_key="region",
        node_name="region",
        params={
            "roi": "1,1,2,2",
            "data": "",
            "boundaries": None,
            "levels": "",
            "accumulation": None,
        },
        inputs={},
        upstream_names=frozenset(),
        item=None,
        staging_root=tp_home / "staging",
    )
    assert node.task.inputs(ctx) == []
    assert not (tp_home / "sample").exists()


def test_missing_input_file_names_the_parameter(cli, tmp_path) -> None:
    code, _, err = cli(
        "run", "catchment-area", "-p", "roi=80,20,81,21", "-p", f"accumulation={tmp_path}/no.tif"
    )
    assert code == 2 and "'accumulation'" in err and "no.tif" in err
    assert "Traceback" not in err


# -- NDVI on Landsat-style files and multi-band images -------------------------------


def _villages_file(region: SampleManifest, dest: Path) -> Path:
    villages = gpd.read_parquet(region.path("villages"))
    villages = villages.rename(columns={"village_id": "VIL_CODE", "name": "VIL_NAME"})
    dest.parent.mkdir(parents=True, exist_ok=True)
    villages.to_crs(4326).to_file(dest, driver="GeoJSON")
    return dest


def _full_roi(region: SampleManifest) -> str:
    with rasterio.open(region.band_paths(region.dates[0])[0]) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, 4326, *src.bounds)
    pad = 0.05
    return f"{west - pad},{south - pad},{east + pad},{north + pad}"


def _dn(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1).astype("uint16"), src.profile


def _fill_stripes(red: np.ndarray, nir: np.ndarray, k: int) -> None:
    """Level-1 style fill: 0 in a stripe of one band only (bands' edges differ), so the
    fill makes NDVI +1 or -1 unless it is known as nodata."""
    rows = red.shape[0]
    red[:, 10 + k : 40 + k] = 0
    nir[rows // 2 : rows // 2 + 25, :] = 0


def _landsat_scenes(
    region: SampleManifest,
    root: Path,
    dates: list[str],
    *,
    shift: int = 0,
    path_row: str = "145045",
    east_m: float = 0.0,
) -> None:
    """Landsat-style folders of band files; ``shift`` columns cut off the west edge put
    the scene on another grid (footprints of one path/row vary from date to date);
    ``east_m`` moves it (another path/row)."""
    for i, when in enumerate(dates):
        red_path, nir_path = region.band_paths(when)
        red, profile = _dn(red_path)
        nir, _ = _dn(nir_path)
        _fill_stripes(red, nir, i)
        if shift:
            red, nir = red[:, shift:].copy(), nir[:, shift:].copy()
            t = profile["transform"]
            profile = profile | {
                "width": red.shape[1],
                "transform": t @ rasterio.Affine.translation(shift, 0),
            }
        if east_m:
            moved = rasterio.Affine.translation(east_m, 0) @ profile["transform"]
            profile = profile | {"transform": moved}
        stamp = when.replace("-", "")
        base = f"LC08_L1TP_{path_row}_{stamp}_20250101_02_T1"
        folder = root / base
        folder.mkdir(parents=True)
        profile = {k: profile[k] for k in ("width", "height", "crs", "transform")} | {
            "driver": "GTiff",
            "count": 1,
            "dtype": "uint16",
        }  # no nodata tag, no scale
        for band, arr in (("B4", red), ("B5", nir), ("B3", (red // 2).astype("uint16"))):
            with rasterio.open(folder / f"{base}_{band}.TIF", "w", **profile) as dst:
                dst.write(arr, 1)
        (folder / f"{base}_MTL.txt").write_text("GROUP = L1_METADATA_FILE\n")


def _expected_means(
    red: np.ndarray,
    nir: np.ndarray,
    profile: dict,
    zones: Path,
    dest: Path,
    nodata: float,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
) -> pd.DataFrame:
    """Independent: NDVI with numpy from the DN, nodata masked, then exactextract means."""
    r = red.astype("float64") * scale + offset
    n = nir.astype("float64") * scale + offset
    valid = (red != nodata) & (nir != nodata) & ((r + n) != 0)
    ndvi = np.where(valid, (n - r) / np.where(valid, r + n, 1), np.nan).astype("float32")
    meta = {k: profile[k] for k in ("width", "height", "crs", "transform")}
    with rasterio.open(
        dest, "w", driver="GTiff", count=1, dtype="float32", nodata=float("nan"), **meta
    ) as dst:
        dst.write(ndvi, 1)
    polygons = gpd.read_file(zones).to_crs(profile["crs"])
    table = exact_extract(str(dest), polygons, "mean", include_cols=["VIL_CODE"], output="pandas")
    return table.set_index("VIL_CODE")["mean"]


def _series(doc: dict) -> pd.DataFrame:
    files = doc["nodes"]["series"]["outputs"]["series"]["layer"]["files"]
    return pd.read_parquet(files[1])


def test_ndvi_on_landsat_band_files_with_nodata_equals_exactextract(cli, region, tmp_path) -> None:
    dates = [d.isoformat() for d in region.dates[:3]]
    scenes = tmp_path / "landsat" / "collection2"
    _landsat_scenes(region, scenes, dates)
    # the neighbouring path/row, same day, 400 km east: not over the ROI, left out
    _landsat_scenes(region, scenes, dates[:1], path_row="144045", east_m=400_000)
    zones = _villages_file(region, tmp_path / "zones" / "my villages.geojson")
    args = [
        "ndvi-timeseries",
        "-p",
        f"roi={_full_roi(region)}",
        "-p",
        f"scenes={scenes.parent}",
        "-p",
        "bands=red:B4,nir:B5",
        "-p",
        f"villages={zones}",
        "-p",
        "zone_id=VIL_CODE",
        "-p",
        "zone_name=VIL_NAME",
    ]
    with_nodata = _run_json(cli, *args, "-p", "nodata=0")
    assert with_nodata["state"] == "succeeded"
    table = _series(with_nodata)
    assert sorted(table["date"].dt.date.astype(str).unique()) == dates
    names = gpd.read_file(zones).set_index("VIL_CODE")["VIL_NAME"]
    assert (table["village"] == table["village_id"].map(names)).all()
    checked = 0
    for i, when in enumerate(dates):
        folder = next(scenes.glob(f"*_145045_{when.replace('-', '')}_*"))
        red, profile = _dn(next(folder.glob("*_B4.TIF")))
        nir, _ = _dn(next(folder.glob("*_B5.TIF")))
        expected = _expected_means(red, nir, profile, zones, tmp_path / f"ndvi_{i}.tif", 0)
        got = table[table["date"] == pd.Timestamp(when)].set_index("village_id")["ndvi_mean"]
        common = expected.dropna().index.intersection(got.index)
        assert len(common) >= 5
        np.testing.assert_allclose(got[common], expected[common], rtol=1e-5, atol=1e-6)
        checked += len(common)
    assert checked >= 15

    # without nodata the fill counts as data: some village means move (NDVI +1 / -1 cells)
    without = _series(_run_json(cli, *args))
    merged = table.merge(without, on=["village_id", "date"], suffixes=("", "_raw"))
    assert (np.abs(merged["ndvi_mean"] - merged["ndvi_mean_raw"]) > 0.01).any()

    # a new scene in the folder, on another grid: only its date is computed, the coverage
    # is reused by the others and made anew for it; its means still equal exactextract's
    later = region.dates[3].isoformat()
    _landsat_scenes(region, scenes, [later], shift=7)
    grown = _run_json(cli, *args, "-p", "nodata=0")
    states = [n["state"] for n in grown["nodes"]["ndvi"]]
    assert states == ["cached"] * 3 + ["succeeded"]
    assert grown["nodes"]["coverage"]["state"] == "cached"
    folder = next(scenes.glob(f"*_145045_{later.replace('-', '')}_*"))
    red, profile = _dn(next(folder.glob("*_B4.TIF")))
    nir, _ = _dn(next(folder.glob("*_B5.TIF")))
    with rasterio.open(region.band_paths(region.dates[0])[0]) as first:
        assert profile["transform"] != first.transform  # not the coverage's grid
    expected = _expected_means(red, nir, profile, zones, tmp_path / "ndvi_later.tif", 0)
    table = _series(grown)
    got = table[table["date"] == pd.Timestamp(later)].set_index("village_id")["ndvi_mean"]
    common = expected.dropna().index.intersection(got.index)
    assert len(common) >= 5
    np.testing.assert_allclose(got[common], expected[common], rtol=1e-5, atol=1e-6)


def test_ndvi_on_multiband_images_in_another_band_order(cli, region, tmp_path) -> None:
    dates = [d.isoformat() for d in region.dates[4:6]]
    folder = tmp_path / "planet like"
    folder.mkdir()
    stacks = {}
    for when in dates:
        red, profile = _dn(region.band_paths(when)[0])
        nir, _ = _dn(region.band_paths(when)[1])
        green = (red // 3).astype("uint16")
        meta = {k: profile[k] for k in ("width", "height", "crs", "transform")}
        path = folder / f"analytic_{when.replace('-', '')}_4band.tif"
        with rasterio.open(
            path, "w", driver="GTiff", count=3, dtype="uint16", nodata=0, **meta
        ) as dst:  # band order: NIR, green, red
            dst.write(np.stack([nir, green, red]))
        stacks[when] = (red, nir, profile)
    zones = _villages_file(region, tmp_path / "villages.geojson")
    doc = _run_json(
        cli,
        "ndvi-timeseries",
        "-p",
        f"roi={_full_roi(region)}",
        "-p",
        f"scenes={folder}/*.tif",
        "-p",
        "bands=red:3,nir:1",
        "-p",
        f"villages={zones}",
        "-p",
        "zone_id=VIL_CODE",
        "-p",
        "scale=0.0000275",
        "-p",
        "offset=-0.2",
    )
    table = _series(doc)
    for i, when in enumerate(dates):
        red, nir, profile = stacks[when]
        expected = _expected_means(
            red, nir, profile, zones, tmp_path / f"e{i}.tif", 0, scale=0.0000275, offset=-0.2
        )
        got = table[table["date"] == pd.Timestamp(when)].set_index("village_id")["ndvi_mean"]
        common = expected.dropna().index.intersection(got.index)
        assert len(common) >= 5
        np.testing.assert_allclose(got[common], expected[common], rtol=1e-5, atol=1e-6)


def test_two_scenes_over_the_roi_on_one_date_exit_2(cli, region, tmp_path) -> None:
    when = region.dates[0].isoformat()
    _landsat_scenes(region, tmp_path / "ls", [when])
    _landsat_scenes(region, tmp_path / "ls", [when], path_row="145046", east_m=300.0)
    code, _, err = cli(
        "run",
        "ndvi-timeseries",
        "-p",
        f"roi={_full_roi(region)}",
        "-p",
        f"scenes={tmp_path / 'ls'}",
        "-p",
        "bands=red:B4,nir:B5",
        "-p",
        f"data={region.directory}",
    )
    assert code == 2, err
    assert f"two scenes over the ROI on {when}" in err and "145046" in err


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ("red:B4", "has no nir"),
        ("red=B4,nir=B5", "NAME:VALUE"),
        ("red:B7,nir:B9", "band tokens"),
        ("red:3,nir:B5", "mixes"),
    ],
)
def test_bad_band_mapping_exits_2(cli, region, tmp_path, bands, message) -> None:
    scenes = tmp_path / "ls"
    _landsat_scenes(region, scenes, [region.dates[0].isoformat()])
    code, _, err = cli(
        "run",
        "ndvi-timeseries",
        "-p",
        f"roi={_full_roi(region)}",
        "-p",
        f"scenes={scenes}",
        "-p",
        f"bands={bands}",
        "-p",
        f"data={region.directory}",
    )
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_ndvi_on_scenes_from_a_catalog_query(cli, region, tmp_path) -> None:
    """``scenes=catalog:{...}``: the downloaded files of the matching datasets over the ROI,
    dated by the dataset (file names carry no date here)."""
    import datetime as dt

    import shapely

    from terrapipe.catalog import Dataset, DatasetURI
    from terrapipe.catalog.ingest import save_datasets
    from terrapipe.store import open_database

    roi = _full_roi(region)
    footprint = shapely.box(*(float(v) for v in roi.split(",")))
    datasets, expected_dates = [], []
    for i, when in enumerate(region.dates[:2] + region.dates[6:7]):
        red, profile = _dn(region.band_paths(when)[0])
        nir, _ = _dn(region.band_paths(when)[1])
        folder = tmp_path / "downloads" / f"scene-{i}"
        folder.mkdir(parents=True)
        meta = {k: profile[k] for k in ("width", "height", "crs", "transform")}
        uris = []
        for name, arr in (("red", red), ("nir", nir)):
            path = folder / f"{name}.tif"
            with rasterio.open(path, "w", driver="GTiff", count=1, dtype="uint16", **meta) as d:
                d.write(arr, 1)
            uris.append(DatasetURI(f"https://example.invalid/{i}/{name}.tif", local_path=str(path)))
        far = i == 2  # same collection, elsewhere on Earth: not a scene of this ROI
        datasets.append(
            Dataset(
                f"scene-{i}",
                collection="my-optical",
                time_start=dt.datetime(when.year, when.month, when.day, 10, tzinfo=dt.UTC),
                footprint=shapely.box(-60, -10, -59, -9) if far else footprint,
                uris=tuple(uris),
            )
        )
        if not far:
            expected_dates.append(when.isoformat())
    with open_database() as db:
        save_datasets(db, datasets)
    zones = _villages_file(region, tmp_path / "villages.geojson")
    doc = _run_json(
        cli,
        "ndvi-timeseries",
        "-p",
        f"roi={roi}",
        "-p",
        'scenes=catalog:{"collection": "my-optical"}',
        "-p",
        "bands=red:red,nir:nir",
        "-p",
        f"villages={zones}",
        "-p",
        "zone_id=VIL_CODE",
    )
    table = _series(doc)
    assert sorted(table["date"].dt.date.astype(str).unique()) == expected_dates
    when = expected_dates[1]
    red, profile = _dn(tmp_path / "downloads" / "scene-1" / "red.tif")
    nir, _ = _dn(tmp_path / "downloads" / "scene-1" / "nir.tif")
    expected = _expected_means(red, nir, profile, zones, tmp_path / "e.tif", -1)
    got = table[table["date"] == pd.Timestamp(when)].set_index("village_id")["ndvi_mean"]
    common = expected.dropna().index.intersection(got.index)
    assert len(common) >= 5
    np.testing.assert_allclose(got[common], expected[common], rtol=1e-5, atol=1e-6)


def test_facilities_proximity_on_own_files_and_columns(cli, region, tmp_path) -> None:
    villages = gpd.read_parquet(region.path("villages")).rename(
        columns={"village_id": "code", "name": "label"}
    )
    facilities = gpd.read_parquet(region.path("facilities")).rename(columns={"kind": "amenity"})
    vpath, fpath = tmp_path / "v" / "census.gpkg", tmp_path / "f" / "sites.geojson"
    vpath.parent.mkdir()
    fpath.parent.mkdir()
    villages.to_crs(3857).to_file(vpath, driver="GPKG")
    facilities.to_file(fpath, driver="GeoJSON")
    roi = _full_roi(region)
    doc = _run_json(
        cli,
        "facilities-proximity",
        "-p",
        f"roi={roi}",
        "-p",
        f"villages={vpath}",
        "-p",
        "zone_id=code",
        "-p",
        f"facilities={fpath}",
        "-p",
        "facility_kind=amenity",
    )
    table = gpd.read_parquet(_layer_file(doc, "proximity"))
    utm = villages.estimate_utm_crs()
    v = table.to_crs(utm)
    f = facilities.to_crs(utm)
    for kind in sorted(facilities.amenity.unique()):
        targets = f[f.amenity == kind].geometry.values
        for geom_v, got in zip(v.geometry.values[:20], v[f"dist_{kind}_m"][:20], strict=True):
            assert got == pytest.approx(min(geom_v.distance(t) for t in targets), abs=0.01)
    code, _, err = cli(
        "run",
        "facilities-proximity",
        "-p",
        f"roi={roi}",
        "-p",
        f"villages={vpath}",
        "-p",
        f"facilities={fpath}",
    )
    assert code == 2 and "'facility_kind'" in err and "amenity" in err


def test_drainage_lines_on_own_file_without_order(cli, region, tmp_path) -> None:
    import shapely

    source = gpd.read_parquet(region.path("drainage_lines")).drop(columns="order")
    rivers = tmp_path / "hydro" / "rivers.gpkg"
    rivers.parent.mkdir()
    source.to_crs(3857).to_file(rivers, driver="GPKG")
    roi = _full_roi(region).split(",")
    x0, y0, x1, y1 = (float(v) for v in roi)
    box = f"{x0},{y0},{(x0 + x1) / 2},{(y0 + y1) / 2}"  # the south-west quarter
    doc = _run_json(cli, "drainage-lines", "-p", f"roi={box}", "-p", f"lines={rivers}")
    out = gpd.read_parquet(_layer_file(doc, "clip-drainage-lines"))
    lines = gpd.read_file(rivers)
    quarter = gpd.GeoSeries([shapely.box(x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)], crs=4326)
    area = quarter.to_crs(lines.crs).iloc[0]
    expected = float(shapely.length(shapely.intersection(lines.geometry.values, area)).sum())
    assert expected > 0
    assert out.to_crs(lines.crs).length.sum() == pytest.approx(expected, rel=1e-3)
    code, _, err = cli(
        "run", "drainage-lines", "-p", f"roi={box}", "-p", f"lines={rivers}", "-p", "min_order=2"
    )
    assert code == 2 and "no 'order' column" in err


def test_stream_order_on_own_dem(cli, region, tmp_path) -> None:
    import shutil

    dem = tmp_path / "srtm" / "n21e080_utm.tif"
    dem.parent.mkdir()
    shutil.copy(region.path("dem"), dem)
    villages = _villages_file(region, tmp_path / "villages.geojson")
    doc = _run_json(
        cli,
        "stream-order",
        "-p",
        "roi=Narmada Pradesh/Sonpur",
        "-p",
        f"data={region.directory}",  # boundaries from the data folder, inputs given
        "-p",
        f"dem={dem}",
        "-p",
        f"villages={villages}",
        "-p",
        "zone_id=VIL_CODE",
        "-p",
        "threshold=50",
    )
    assert doc["nodes"]["clip-dem"]["outputs"]["source"] == str(dem.resolve())
    clipped = doc["nodes"]["clip-dem"]["outputs"]["dem"]
    with rasterio.open(clipped) as clip, rasterio.open(dem) as src:
        data = clip.read(1, masked=True)
        window = rasterio.windows.from_bounds(*clip.bounds, transform=src.transform)
        direct = src.read(1, window=window.round_offsets().round_lengths())
        assert (~data.mask).sum() > 100
        np.testing.assert_array_equal(data.compressed(), direct[~data.mask])
    table = gpd.read_parquet(_layer_file(doc, "order-by-zone"))
    assert "VIL_CODE" in table.columns and len(table) > 0
