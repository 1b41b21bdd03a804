"""Landsat product names as USGS ships them, harvested from a folder (issue 9)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from terrapipe.catalog.harvest import harvest
from terrapipe.catalog.harvest.products import parse_product_name
from terrapipe.catalog.query import get_dataset, search

# name -> (platform, instrument, processing level, acquisition date, band)
REAL_NAMES = {
    "LE07_L2SP_225078_20110306_02_T1_B1": ("landsat-7", "etm+", "L2SP", "2011-03-06", "B1"),
    "LE07_L2SP_225078_20110306_20200910_02_T1_SR_B3": (
        "landsat-7",
        "etm+",
        "L2SP",
        "2011-03-06",
        "SR_B3",
    ),
    "LC08_L1TP_193029_20210508_20210518_02_T1_B10": (
        "landsat-8",
        "oli-tirs",
        "L1TP",
        "2021-05-08",
        "B10",
    ),
    "LC09_L2SP_044034_20230508_20230510_02_T1_ST_B10": (
        "landsat-9",
        "oli-tirs",
        "L2SP",
        "2023-05-08",
        "ST_B10",
    ),
    "LT05_L1GT_231062_19950716_20200912_02_T2_B4": (
        "landsat-5",
        "tm",
        "L1GT",
        "1995-07-16",
        "B4",
    ),
    "LC08_L1TP_193029_20210508_20210518_02_RT_QA_PIXEL": (
        "landsat-8",
        "oli-tirs",
        "L1TP",
        "2021-05-08",
        "QA_PIXEL",
    ),
    "LO08_L1GT_193029_20210508_02_T2": ("landsat-8", "oli", "L1GT", "2021-05-08", None),
}


@pytest.mark.parametrize("name", sorted(REAL_NAMES))
def test_real_landsat_names_parse(name: str) -> None:
    platform, instrument, level, day, band = REAL_NAMES[name]
    info = parse_product_name(name)
    assert info is not None, name
    assert (info.family, info.platform, info.instrument) == ("landsat", platform, instrument)
    assert info.properties["processing_level"] == level
    assert info.properties.get("band") == band
    assert info.acquired == datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_pre_collection_scene_id_and_impossible_missions() -> None:
    info = parse_product_name("LC80440342016259LGN00_B4")
    assert (info.platform, info.instrument) == ("landsat-8", "oli-tirs")
    assert info.acquired == datetime(2016, 9, 15, tzinfo=UTC)  # day 259 of 2016
    assert info.properties["band"] == "B4"
    # Landsat 7 never carried OLI, Landsat 8 never carried ETM+: not Landsat names.
    assert parse_product_name("LC07_L2SP_225078_20110306_02_T1_B1") is None
    assert parse_product_name("LE08_L2SP_225078_20110306_02_T1_B1") is None


def test_folder_of_real_landsat_files_with_a_geopackage_beside(
    db, tmp_path: Path, make_raster
) -> None:
    root = tmp_path / "my_scenes"
    for name in REAL_NAMES:
        make_raster(root / f"{name}.TIF", crs="EPSG:32722", origin=(300000, 7400000))
    # The user's outline of a scene, named after it: a vector, not the Landsat scene.
    outline = root / "LC08_L1TP_193029_20210508_20210518_02_T1_B10.gpkg"
    gpd.GeoDataFrame({"n": [1]}, geometry=[box(-50, -24, -49, -23)], crs=4326).to_file(outline)

    report = harvest(db, root)
    assert (report.added, report.failed) == (len(REAL_NAMES) + 1, 0)
    for name, (platform, instrument, level, day, _) in REAL_NAMES.items():
        d = get_dataset(db, name)
        assert (d.collection, d.platform, d.instrument) == ("landsat", platform, instrument)
        assert d.properties["processing_level"] == level
        assert d.time_start == datetime.fromisoformat(day).replace(tzinfo=UTC)
    vector = get_dataset(db, outline.resolve().as_posix())
    assert (vector.platform, vector.instrument, vector.collection) == (None, None, "my_scenes")
    assert vector.properties["kind"] == "vector"
    assert len(search(db, {"collection": "my_scenes"})) == 1
