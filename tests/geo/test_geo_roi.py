from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS

from terrapipe.errors import AdminNameNotFound, RoiError, RoiOutsideData
from terrapipe.geo.roi import check_overlap, parse_roi, roi_from_admin, roi_from_file

BOUNDARIES = gpd.GeoDataFrame(
    {
        "state": ["Narmada Pradesh"] * 3 + ["Wainganga"] * 2,
        "district": ["Bālāgiri", "Bālāgiri", "Sonpur", "Seonī Kalan", "Seonī Kalan"],
        "block": ["Lānji", "Baihar", "Amarkantak", "Kurai", "Ghansor"],
    },
    geometry=[shapely.box(80 + i * 0.1, 21, 80.1 + i * 0.1, 21.1) for i in range(5)],
    crs=4326,
)
NAMES = list(zip(BOUNDARIES.state, BOUNDARIES.district, BOUNDARIES.block, strict=True))


def _scramble(name: str, draw_case: list[bool], strip_accents: bool) -> str:
    if strip_accents:
        name = "".join(
            c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c)
        )
    out = "".join(
        ch.upper() if flip else ch.lower()
        for ch, flip in zip(name, draw_case + [False] * len(name), strict=False)
    )
    return out.replace(" ", "")


@settings(max_examples=60, deadline=None)
@given(
    idx=st.integers(0, len(NAMES) - 1),
    cases=st.lists(st.booleans(), max_size=30),
    strip=st.booleans(),
)
def test_admin_match_ignores_case_spaces_and_accents(idx, cases, strip):
    state, district, block = NAMES[idx]
    path = "/".join(_scramble(n, cases, strip) for n in (state, district, block))
    roi = parse_roi(path, boundaries=BOUNDARIES)
    assert roi.label == f"{state}/{district}/{block}"
    assert roi.kind == "admin"
    assert roi.geometry.equals(BOUNDARIES.geometry.iloc[idx])


def test_admin_prefix_dissolves_children():
    roi = roi_from_admin("narmada pradesh/balagiri", BOUNDARIES)
    assert roi.geometry.area == pytest.approx(0.02)


def test_unknown_admin_name_lists_three_closest():
    with pytest.raises(AdminNameNotFound) as info:
        roi_from_admin("Narmada Pradesh/Balagiri/Lanjy", BOUNDARIES)
    msg = str(info.value)
    assert "'Lanjy'" in msg and "'Lānji'" in msg and "block" in msg
    assert isinstance(info.value, LookupError)
    with pytest.raises(AdminNameNotFound, match="'Wainganga'"):
        roi_from_admin("Waingunga", BOUNDARIES)


finite = st.floats(-170, 170, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(x=finite, y=st.floats(-80, 80), w=st.floats(1e-4, 9), h=st.floats(1e-4, 9))
def test_bbox_round_trip(x, y, w, h):
    text = f"{x!r},{y!r},{x + w!r},{y + h!r}"
    roi = parse_roi(text)
    assert roi.kind == "bbox" and roi.crs == CRS(4326)
    assert roi.bounds == pytest.approx((x, y, x + w, y + h), abs=1e-12)
    again = parse_roi(",".join(repr(v) for v in roi.bounds))
    assert again.geometry.equals(roi.geometry)
    assert again.slug == roi.slug


def test_bbox_in_a_given_crs():
    roi = parse_roi("380000, 2420000, 390000, 2430000", crs="EPSG:32644")
    assert roi.crs == CRS(32644)
    assert roi.to_crs(4326).crs == CRS(4326)


@pytest.mark.parametrize(
    "text", ["1,2,3", "3,2,1,4", "10,10,5,20", "0,95,1,96", "a,b,c,d", "", "   "]
)
def test_bad_bbox_or_text_is_named(text):
    with pytest.raises(RoiError):
        parse_roi(text)


def test_invalid_crs_is_named():
    with pytest.raises(RoiError, match="EPSG:99999"):
        parse_roi("0,0,1,1", crs="EPSG:99999")


def test_wkt_bowtie_is_repaired_and_reported():
    roi = parse_roi("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))")
    assert roi.repaired and roi.geometry.is_valid
    assert roi.geometry.area == pytest.approx(0.5)
    assert any("make_valid" in n for n in roi.notes)


def test_valid_wkt_is_not_marked_repaired():
    roi = parse_roi("SRID=32644;POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))")
    assert not roi.repaired and roi.crs == CRS(32644)


@pytest.mark.parametrize(
    "text", ["POLYGON EMPTY", "POINT (1 2)", "LINESTRING (0 0, 1 1)", "POLYGON ((0 0, 1"]
)
def test_empty_non_areal_or_broken_wkt_is_rejected(text):
    with pytest.raises(RoiError):
        parse_roi(text)


def test_geojson_feature_collection_is_dissolved():
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)}
            for g in (shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1))
        ],
    }
    roi = parse_roi(json.dumps(doc))
    assert roi.kind == "geojson" and roi.geometry.area == pytest.approx(2)


def test_bad_geojson_is_named():
    with pytest.raises(RoiError, match="GeoJSON"):
        parse_roi('{"type": "Polygon", "coordinates": 5}')


def test_roi_from_file_dissolved_or_by_attribute(tmp_path: Path):
    path = tmp_path / "areas.gpkg"
    BOUNDARIES.to_file(path)
    assert parse_roi(str(path)).geometry.area == pytest.approx(0.05)
    one = parse_roi(f"{path}#block=lanji")
    assert one.geometry.equals(BOUNDARIES.geometry.iloc[0]) and one.kind == "file"
    with pytest.raises(AdminNameNotFound, match="Lānji"):
        roi_from_file(path, attribute="block", value="Lanjo")


def test_unparseable_text_without_boundaries_is_explained():
    with pytest.raises(RoiError, match="no boundary layer"):
        parse_roi("Some/Admin/Path")


def test_roi_outside_data_is_a_clear_error():
    roi = parse_roi("80,21,80.1,21.1")
    with pytest.raises(RoiOutsideData, match="dem.tif"):
        check_overlap(roi, (0, 0, 1000, 1000), "EPSG:32644", name="dem.tif")
    check_overlap(roi, (390000, 2320000, 420000, 2340000), "EPSG:32644", name="dem.tif")


# -- admin paths on the user's own boundaries (named level columns) ---------------------


def _natural_earth() -> Path:
    import pyogrio

    path = (
        Path(pyogrio.__file__).parent
        / "tests"
        / "fixtures"
        / "naturalearth_lowres"
        / "naturalearth_lowres.shp"
    )
    if not path.exists():
        pytest.skip(f"pyogrio does not ship Natural Earth countries here: {path}")
    return path


@pytest.fixture(scope="module")
def countries() -> gpd.GeoDataFrame:
    return gpd.read_file(_natural_earth())


def test_admin_path_with_named_levels_matches_natural_earth(countries):
    roi = parse_roi("south AMERICA/Brazíl", boundaries=countries, levels="continent,name")
    brazil = countries[(countries.continent == "South America") & (countries.name == "Brazil")]
    assert len(brazil) == 1
    assert roi.label == "South America/Brazil" and roi.kind == "admin"
    assert roi.geometry.equals(shapely.make_valid(brazil.geometry.iloc[0]))
    # a prefix is the whole continent
    continent = roi_from_admin("south america", countries, levels=("continent", "name"))
    expected = countries[countries.continent == "South America"].geometry.union_all()
    assert continent.geometry.symmetric_difference(expected).area < 1e-9


def test_admin_levels_errors_say_which_levels_and_columns_exist(countries):
    with pytest.raises(RoiError) as info:  # default state/district/block
        parse_roi("South America/Brazil", boundaries=countries)
    msg = str(info.value)
    assert "'state'" in msg and "continent" in msg and "iso_a3" in msg and "levels=" in msg
    with pytest.raises(RoiError) as info:  # too long
        roi_from_admin("South America/Brazil/Pará", countries, levels="continent,name")
    msg = str(info.value)
    assert "3 parts" in msg and "2 level" in msg and "continent/name" in msg
    with pytest.raises(AdminNameNotFound) as info:  # too short: a country at the top
        roi_from_admin("Brazil", countries, levels="continent,name")
    msg = str(info.value)
    assert "'South America/Brazil'" in msg and "continent/name" in msg
    with pytest.raises(AdminNameNotFound) as info:  # close matches still suggested
        roi_from_admin("South America/Brasil", countries, levels="continent,name")
    assert "'Brazil'" in str(info.value)
    with pytest.raises(RoiError, match="named twice"):
        roi_from_admin("Asia", countries, levels="name,name")
