from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS

from terrapipe.errors import RoiOutsideData, VectorError
from terrapipe.geo.roi import parse_roi
from terrapipe.geo.vector import (
    clip_vector,
    dissolve,
    metric_crs,
    nearest_distance,
    read_vector,
    spatial_join,
    write_vector,
)

UTM = "EPSG:32644"


def _villages_and_facilities(seed: int = 0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform([380_000, 2_420_000], [400_000, 2_440_000], (40, 2))
    villages = gpd.GeoDataFrame(
        {"vid": range(40)},
        geometry=[shapely.Point(x, y).buffer(rng.uniform(50, 300), 6) for x, y in xy],
        crs=UTM,
    ).to_crs(4326)
    fxy = rng.uniform([379_000, 2_419_000], [401_000, 2_441_000], (30, 2))
    kinds = np.array(["school", "clinic", "market"])[rng.integers(0, 3, 30)]
    facilities = gpd.GeoDataFrame(
        {"kind": kinds}, geometry=gpd.points_from_xy(fxy[:, 0], fxy[:, 1]), crs=UTM
    ).to_crs(4326)
    return villages, facilities


def test_nearest_distance_matches_shapely_brute_force():
    villages, facilities = _villages_and_facilities()
    out = nearest_distance(villages, facilities, by="kind", crs=UTM)
    v = villages.to_crs(UTM).geometry
    f = facilities.to_crs(UTM)
    for kind in ("school", "clinic", "market"):
        targets = list(f[f.kind == kind].geometry)
        brute = [min(g.distance(t) for t in targets) for g in v]
        np.testing.assert_allclose(out[f"dist_{kind}_m"], brute, rtol=1e-9)
    assert out.crs == villages.crs  # output keeps the features' CRS and attributes
    assert (out["vid"] == villages["vid"]).all()


def test_default_distance_crs_is_the_local_utm_zone():
    villages, facilities = _villages_and_facilities(1)
    assert metric_crs(villages) == CRS(32644)
    auto = nearest_distance(villages, facilities)
    fixed = nearest_distance(villages, facilities, crs=UTM)
    np.testing.assert_allclose(auto["dist_nearest_m"], fixed["dist_nearest_m"])


def test_distance_in_degrees_is_refused():
    villages, facilities = _villages_and_facilities()
    with pytest.raises(VectorError, match="projected"):
        nearest_distance(villages, facilities, crs=4326)


def test_missing_class_gives_nan_and_unknown_column_is_named():
    villages, facilities = _villages_and_facilities()
    out = nearest_distance(villages, facilities, by="kind", classes=["school", "bank"], crs=UTM)
    assert out["dist_bank_m"].isna().all() and out["dist_school_m"].notna().all()
    with pytest.raises(VectorError, match="'type'"):
        nearest_distance(villages, facilities, by="type")


def test_clip_vector_cuts_lines_to_the_roi():
    lines = gpd.GeoDataFrame(
        {"order": [1, 2, 3]},
        geometry=[
            shapely.LineString([(0, 5), (10, 5)]),
            shapely.LineString([(5, 0), (5, 10)]),
            shapely.LineString([(20, 20), (30, 30)]),
        ],
        crs=UTM,
    )
    roi = parse_roi("2,2,8,8", crs=UTM)
    out = clip_vector(lines, roi)
    assert out["order"].tolist() == [1, 2]
    assert out.length.tolist() == pytest.approx([6, 6])
    whole = clip_vector(lines, roi, cut=False)
    assert whole["order"].tolist() == [1, 2] and whole.length.tolist() == pytest.approx([10, 10])
    with pytest.raises(RoiOutsideData, match="drainage"):
        clip_vector(lines, parse_roi("100,100,200,200", crs=UTM), name="drainage lines")


def test_spatial_join_across_crs_and_dissolve():
    villages, _ = _villages_and_facilities()
    blocks = gpd.GeoDataFrame(
        {"block": ["west", "east"], "state": ["s", "s"]},
        geometry=[
            shapely.box(379_000, 2_419_000, 390_000, 2_441_000),
            shapely.box(390_000, 2_419_000, 401_000, 2_441_000),
        ],
        crs=UTM,
    )
    pts = gpd.GeoDataFrame(villages[["vid"]], geometry=villages.representative_point(), crs=4326)
    joined = spatial_join(pts, blocks, predicate="within")
    xs = pts.to_crs(UTM).geometry.x
    assert (joined["block"] == np.where(xs < 390_000, "west", "east")).all()
    merged = dissolve(blocks, by="state")
    assert len(merged) == 1 and merged.area.iloc[0] == pytest.approx(22_000 * 22_000)


@pytest.mark.parametrize("ext", ["parquet", "gpkg", "geojson"])
def test_write_and_read_back(tmp_path: Path, ext: str):
    villages, _ = _villages_and_facilities()
    path = write_vector(villages, tmp_path / f"v.{ext}")
    back = read_vector(path)
    assert len(back) == 40 and back.crs.to_epsg() == 4326
    assert back.geometry.area.sum() == pytest.approx(villages.geometry.area.sum(), rel=1e-6)
    assert not list(tmp_path.glob(".*tmp*"))


def test_unreadable_vector_file_is_named(tmp_path: Path):
    bad = tmp_path / "broken.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(VectorError, match="broken.gpkg"):
        read_vector(bad)
    with pytest.raises(VectorError, match="unknown vector format"):
        write_vector(gpd.GeoDataFrame(geometry=[], crs=UTM), tmp_path / "x.csv")
