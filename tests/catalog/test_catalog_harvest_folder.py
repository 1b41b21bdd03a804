"""Folder harvest: rasters in two UTM zones, names, tags, vectors, failures, retry (both DBs)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, box

from terrapipe.catalog.harvest import harvest, retry_failed
from terrapipe.catalog.harvest.products import date_from_name, parse_product_name
from terrapipe.catalog.query import count, get_dataset, search
from terrapipe.errors import DatasetNotFound, HarvestError

LANDSAT = "LC08_L2SP_193029_20210508_20210517_02_T1_SR_B4.TIF"
SENTINEL = "S2B_MSIL2A_20220612T101559_N0400_R065_T33TUM_20220612T130017.tif"


def _reference_footprint(bounds: tuple[float, float, float, float], epsg: int) -> Polygon:
    """The exact footprint: 2,000 points along the edges, reprojected one by one."""
    ring = shapely.segmentize(box(*bounds), (bounds[2] - bounds[0]) / 500).exterior.coords
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)
    return Polygon([to_wgs84.transform(x, y) for x, y in ring])


@pytest.fixture
def folder(tmp_path: Path, make_raster) -> Path:
    root = tmp_path / "scenes"
    # Zone 32N and zone 33N; 1,000 km wide so reprojected edges are visibly curved.
    make_raster(
        root / LANDSAT, crs="EPSG:32632", origin=(200000, 5300000), size=(30, 40), res=20000
    )
    make_raster(
        root / "sub" / SENTINEL,
        crs="EPSG:32633",
        origin=(500000, 4800000),
        size=(30, 30),
        res=10000,
    )
    make_raster(
        root / "dem_2023-04-01.tif",
        crs="EPSG:32633",
        origin=(500000, 4500000),
        tags={"ACQUISITION_DATETIME": "2023-05-02T10:20:30Z"},
    )
    make_raster(root / "ortho_20190704.tif", crs="EPSG:32632", origin=(400000, 4400000))
    gpd.GeoDataFrame(
        {"name": ["a", "b"]}, geometry=[box(10, 45, 11, 46), box(12, 44, 12.5, 44.5)], crs=4326
    ).to_file(root / "fields.gpkg")
    (root / "notes.txt").write_text("not geodata")
    return root


def test_folder_harvest_two_utm_zones(db, folder: Path) -> None:
    report = harvest(db, folder)
    assert (report.added, report.updated, report.failed) == (5, 0, 0)

    landsat = get_dataset(db, LANDSAT.split(".")[0])
    assert (landsat.platform, landsat.instrument, landsat.provider, landsat.collection) == (
        "landsat-8",
        "oli-tirs",
        "USGS",
        "landsat",
    )
    assert landsat.time_start == datetime(2021, 5, 8, tzinfo=UTC)
    assert landsat.properties["wrs_path"] == "193" and landsat.properties["crs"] == "EPSG:32632"
    bounds = (200000, 4500000, 800000, 5300000)
    reference = _reference_footprint(bounds, 32632)
    to_wgs84 = Transformer.from_crs(32632, 4326, always_xy=True)
    corners = Polygon([to_wgs84.transform(x, y) for x, y in box(*bounds).exterior.coords])
    error = landsat.footprint.symmetric_difference(reference).area / reference.area
    corners_error = corners.symmetric_difference(reference).area / reference.area
    assert error < 0.0005 and error < corners_error / 10, (error, corners_error)
    uri = landsat.uris[0]
    assert uri.uri == (folder / LANDSAT).resolve().as_uri()
    assert uri.size == (folder / LANDSAT).stat().st_size and uri.local_path

    sentinel = get_dataset(db, SENTINEL[:-4])
    assert (sentinel.platform, sentinel.instrument, sentinel.collection) == (
        "sentinel-2b",
        "msi",
        "sentinel-2",
    )
    assert sentinel.time_start == datetime(2022, 6, 12, 10, 15, 59, tzinfo=UTC)
    ref33 = _reference_footprint((500000, 4500000, 800000, 4800000), 32633)
    assert sentinel.footprint.symmetric_difference(ref33).area / ref33.area < 0.002

    dem = get_dataset(db, (folder / "dem_2023-04-01.tif").resolve().as_posix())
    assert dem.time_start == datetime(2023, 5, 2, 10, 20, 30, tzinfo=UTC)  # tag beats name
    assert dem.collection == "scenes" and dem.platform is None
    ortho = get_dataset(db, (folder / "ortho_20190704.tif").resolve().as_posix())
    assert ortho.time_start == datetime(2019, 7, 4, tzinfo=UTC)  # date from the file name
    fields = get_dataset(db, (folder / "fields.gpkg").resolve().as_posix())
    assert fields.footprint.bounds == pytest.approx((10, 44, 12.5, 46))
    assert fields.properties["feature_count"] == 2 and fields.time_start is None

    # A point in zone 33 (Sentinel footprint) finds the Sentinel scene and nothing in zone 32.
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(650000, 4650000)
    assert [d.entry_id for d in search(db, geometry=f"POINT ({lon} {lat})")] == [SENTINEL[:-4]]
    assert [d.entry_id for d in search(db, {"platform__startswith": "landsat"})] == [
        LANDSAT.split(".")[0]
    ]


def test_harvest_is_idempotent_and_keeps_local_state(db, folder: Path) -> None:
    harvest(db, folder, collection="mine")
    total = count(db)
    again = harvest(db, folder, collection="mine")
    assert (again.added, again.updated, again.failed) == (0, total, 0)
    assert count(db) == total
    assert {d.collection for d in search(db)} == {"mine"}


def test_unreadable_file_is_reported_rest_harvested_and_retried(
    db, folder: Path, make_raster
) -> None:
    broken = folder / "broken_20200101.tif"
    broken.write_bytes(b"this is not a GeoTIFF")
    report = harvest(db, folder)
    assert (report.added, report.failed) == (5, 1)
    [failure] = report.failures
    assert "broken_20200101.tif" in failure.error
    assert count(db) == 5  # the failed item is not a search result ...
    failed = search(db, {"harvest_status": "failed"})
    assert [d.entry_id for d in failed] == [broken.resolve().as_posix()]  # ... but it is kept
    assert failed[0].harvest_error == failure.error

    still = retry_failed(db)
    assert (still.added, still.updated, still.failed) == (0, 0, 1)
    make_raster(broken, crs="EPSG:32632", origin=(300000, 5000000))
    fixed = retry_failed(db)
    assert (fixed.updated, fixed.failed) == (1, 0)
    assert search(db, {"harvest_status": "failed"}) == []
    assert get_dataset(db, broken.resolve().as_posix()).time_start == datetime(
        2020, 1, 1, tzinfo=UTC
    )


def test_missing_source_and_show_missing(db, tmp_path: Path) -> None:
    with pytest.raises(HarvestError, match="not found"):
        harvest(db, tmp_path / "nowhere")
    with pytest.raises(DatasetNotFound):
        get_dataset(db, "nothing-here")


def test_product_and_date_parsing() -> None:
    info = parse_product_name("LE07_L1TP_044034_20030508_20200915_02_T1_B1")
    assert (info.platform, info.instrument, info.family) == ("landsat-7", "etm+", "landsat")
    assert parse_product_name("LT05_L2SP_044034_19990508_20200915_02_T1").instrument == "tm"
    assert parse_product_name("LC09_L2SP_044034_20230508_20230517_02_T2").platform == "landsat-9"
    assert parse_product_name("T32UNE_20210508T103021_B04_10m").platform == "sentinel-2"
    s1 = parse_product_name("S1A_IW_GRDH_1SDV_20210508T053000_20210508T053025_037800_047600_ABCD")
    assert (s1.platform, s1.instrument) == ("sentinel-1a", "c-sar")
    assert parse_product_name("dem_2023") is None
    assert date_from_name("x_20231301_20230405") == datetime(2023, 4, 5, tzinfo=UTC)
    assert date_from_name("tile-2022-02-28-v2") == datetime(2022, 2, 28, tzinfo=UTC)
    assert date_from_name("id_123202301019") is None


def test_raster_without_crs_fails_and_progress_is_reported(db, tmp_path: Path, make_raster) -> None:
    root = tmp_path / "mixed"
    make_raster(root / "good_20200102.tif", crs="EPSG:32631", origin=(500000, 5000000))
    make_raster(root / "nocrs_20200103.tif", crs=None, origin=(0, 10))
    calls: list[tuple[int, int | None]] = []
    report = harvest(db, root, progress=lambda done, total: calls.append((done, total)))
    assert (report.added, report.failed) == (1, 1)
    assert "has no CRS" in report.failures[0].error
    assert calls == [(1, 2), (2, 2)]
