from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine

from terrapipe.errors import GeoInputError, GridMismatch, RoiOutsideData
from terrapipe.geo.raster import RasterArray
from terrapipe.geo.zonal import zonal_stats, zone_coverage

UTM = "EPSG:32644"
T = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 8.0)  # 8x8 grid of 1 m cells, x 0..8, y 0..8


def _grid_values() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 50, (8, 8)).astype("float64")


def _cell_box(r0, r1, c0, c1):
    """Polygon covering rows r0..r1-1 and cols c0..c1-1 of the 8x8 grid (pixel edges)."""
    return shapely.box(c0, 8 - r1, c1, 8 - r0)


ZONES = gpd.GeoDataFrame(
    {"name": ["a", "b", "c"], "pop": [10, 20, 30]},
    geometry=[_cell_box(0, 3, 0, 4), _cell_box(2, 8, 5, 8), _cell_box(4, 6, 1, 3)],
    crs=UTM,
)
SLICES = [(slice(0, 3), slice(0, 4)), (slice(2, 8), slice(5, 8)), (slice(4, 6), slice(1, 3))]


def test_aligned_zones_match_brute_force_numpy(make_tif):
    values = _grid_values()
    values[1, 1] = -9  # nodata inside zone a
    path = make_tif("v.tif", values, transform=T, crs=UTM, nodata=-9.0)
    out = zonal_stats(path, ZONES, stats="mean,min,max,sum,count")
    assert list(out.columns[:3]) == ["name", "pop", "geometry"]
    assert list(out.columns[3:]) == ["mean", "min", "max", "sum", "count"]
    for i, (rs, cs) in enumerate(SLICES):
        cells = values[rs, cs]
        cells = cells[cells != -9]
        row = out.iloc[i]
        assert row["mean"] == pytest.approx(cells.mean(), abs=1e-9)
        assert row["min"] == cells.min() and row["max"] == cells.max()
        assert row["sum"] == pytest.approx(cells.sum()) and row["count"] == pytest.approx(
            cells.size
        )


def test_partial_coverage_hand_computed():
    # 4x5 grid, values 0..19 row-major, top at y=4; zone box(0.5, 0.5, 2, 2) covers
    # (row 2, col 0) half, (2, 1) fully, (3, 0) a quarter, (3, 1) half.
    values = np.arange(20, dtype="float64").reshape(4, 5)
    raster = RasterArray(values, Affine(1, 0, 0, 0, -1, 4), UTM, -1)
    zones = gpd.GeoDataFrame(geometry=[shapely.box(0.5, 0.5, 2, 2)], crs=UTM)
    out = zonal_stats(raster, zones, stats=["mean", "count", "sum", "min", "max"]).iloc[0]
    weighted = 0.5 * 10 + 1.0 * 11 + 0.25 * 15 + 0.5 * 16  # 27.75
    assert out["count"] == pytest.approx(2.25)
    assert out["sum"] == pytest.approx(weighted)
    assert out["mean"] == pytest.approx(weighted / 2.25)  # 12.333...
    assert (out["min"], out["max"]) == (10, 16)


def test_dominant_class_and_fractional_area():
    classes = np.array([[1, 1, 2, 2], [1, 3, 2, 2], [3, 3, 3, 2], [1, 1, 1, 1]], "uint8")
    raster = RasterArray(classes, Affine(1, 0, 0, 0, -1, 4), UTM, 0)
    zones = gpd.GeoDataFrame(
        {"z": ["top", "all"]}, geometry=[shapely.box(0, 2, 4, 4), shapely.box(0, 0, 4, 4)], crs=UTM
    )
    out = zonal_stats(raster, zones, stats=["dominant", "frac"])
    assert out["dominant"].tolist() == [2, 1]
    for i, rows in enumerate([classes[:2], classes]):
        for k in (1, 2, 3):
            assert out[f"frac_{k}"].iloc[i] == pytest.approx((rows == k).mean())


def test_zones_in_another_crs_are_reprojected():
    values = np.random.default_rng(2).uniform(0, 1, (200, 200))
    t = Affine(30, 0, 380_000, 0, -30, 2_440_000)
    raster = RasterArray(values, t, UTM, -1.0)
    zones = gpd.GeoDataFrame(
        geometry=[shapely.box(381_000, 2_434_000, 384_000, 2_438_000).buffer(500)], crs=UTM
    )
    a = zonal_stats(raster, zones, stats=["mean"])["mean"].iloc[0]
    b = zonal_stats(raster, zones.to_crs(4326), stats=["mean"])["mean"].iloc[0]
    assert a == pytest.approx(b, rel=1e-3)


def test_coverage_reuse_equals_exactextract_per_raster():
    rng = np.random.default_rng(3)
    t = Affine(10, 0, 0, 0, -10, 1000)
    first = RasterArray(rng.uniform(0, 1, (100, 100)), t, UTM, -1.0)
    centres = rng.uniform(100, 900, (25, 2))
    zones = gpd.GeoDataFrame(
        {"id": range(25)},
        geometry=[shapely.Point(x, y).buffer(rng.uniform(15, 80)) for x, y in centres],
        crs=UTM,
    )
    cov = zone_coverage(first, zones)
    for _ in range(3):
        arr = rng.uniform(-1, 1, (100, 100))
        arr[rng.uniform(size=arr.shape) < 0.1] = -1.0  # nodata
        ref = zonal_stats(RasterArray(arr, t, UTM, -1.0), zones, stats="mean,min,max,count,sum")
        got = cov.apply(arr, nodata=-1.0, stats=("mean", "min", "max", "count", "sum"))
        for col in ("mean", "min", "max", "count", "sum"):
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-9, atol=1e-9)


def test_coverage_rejects_other_grids():
    t = Affine(10, 0, 0, 0, -10, 1000)
    zones = gpd.GeoDataFrame(geometry=[shapely.box(100, 100, 300, 300)], crs=UTM)
    cov = zone_coverage(RasterArray(np.zeros((100, 100)), t, UTM, -1.0), zones)
    with pytest.raises(GridMismatch, match="shape"):
        cov.apply(np.zeros((50, 50)))
    with pytest.raises(GridMismatch, match="other.tif"):
        cov.check_grid(Affine(20, 0, 0, 0, -20, 1000), (100, 100), name="other.tif")


def test_unknown_statistic_is_named(tmp_path: Path):
    raster = RasterArray(np.zeros((4, 4)), Affine(1, 0, 0, 0, -1, 4), UTM, -1)
    zones = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=UTM)
    with pytest.raises(GeoInputError, match="'avg'"):
        zonal_stats(raster, zones, stats="mean,avg")


def test_coverage_save_and_load_round_trip(tmp_path: Path):
    t = Affine(10, 0, 0, 0, -10, 1000)
    zones = gpd.GeoDataFrame(
        {"id": ["a", "b"]},
        geometry=[shapely.box(100, 100, 333, 333), shapely.box(500, 500, 900, 777)],
        crs=UTM,
        index=["a", "b"],
    )
    values = np.random.default_rng(4).uniform(0, 1, (100, 100))
    cov = zone_coverage(RasterArray(values, t, UTM, -1.0), zones)
    back = type(cov).load(cov.save(tmp_path / "cov.npz"))
    assert list(back.index) == ["a", "b"] and back.window == cov.window
    np.testing.assert_allclose(back.apply(values)["mean"], cov.apply(values)["mean"])
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(GeoInputError, match="junk.npz"):
        type(cov).load(tmp_path / "junk.npz")


def test_zones_outside_the_raster_name_it(make_tif):
    path = make_tif("far.tif", _grid_values(), transform=T, crs=UTM, nodata=-9.0)
    zones = gpd.GeoDataFrame(geometry=[shapely.box(100, 100, 110, 110)], crs=UTM)
    with pytest.raises(RoiOutsideData, match="far.tif"):
        zonal_stats(path, zones)


# -- point and line zones (issue 9.3), checked against rasterio and rasterstats --------------


def test_point_and_line_zones_match_rasterstats(make_tif):
    import rasterstats

    values = _grid_values()
    values[6, 6] = -9
    path = make_tif("v.tif", values, transform=T, crs=UTM, nodata=-9.0)
    zones = gpd.GeoDataFrame(
        {"name": ["pt", "pt_nodata", "line", "diag", "multi"]},
        geometry=[
            shapely.Point(2.3, 5.7),
            shapely.Point(6.5, 1.5),  # row 6, col 6
            shapely.LineString([(0.5, 0.5), (0.5, 7.5)]),  # column 0
            shapely.LineString([(0.2, 0.3), (7.7, 6.9)]),
            shapely.MultiPoint([(1.5, 1.5), (4.5, 4.5), (7.5, 7.5)]),
        ],
        crs=UTM,
    )
    stats = ["mean", "min", "max", "count", "sum", "median", "majority"]
    out = zonal_stats(path, zones, stats=stats)
    # lines take every cell they touch: rasterstats with all_touched=True
    ref = rasterstats.zonal_stats(zones, str(path), stats=stats, nodata=-9, all_touched=True)
    for i, expected in enumerate(ref):
        for s in stats:
            want = expected[s]
            got = out[s].iloc[i]
            if want is None and s == "sum":  # no valid cell: 0, as exactextract sums
                assert got == 0
            elif want is None:
                assert np.isnan(got), (zones.name[i], s)
            else:
                assert got == pytest.approx(want), (zones.name[i], s)
    with rasterio.open(path) as src:
        (value,) = next(src.sample([(2.3, 5.7)]))
    assert out["mean"].iloc[0] == value and out["count"].iloc[0] == 1


def test_points_outside_the_raster_are_null_with_a_warning(make_tif, caplog):
    values = _grid_values()
    path = make_tif("v.tif", values, transform=T, crs=UTM)
    zones = gpd.GeoDataFrame(
        {"name": ["in", "out"]}, geometry=[shapely.Point(0.5, 7.5), shapely.Point(50, 50)], crs=UTM
    )
    with caplog.at_level("WARNING", logger="terrapipe"):
        out = zonal_stats(path, zones, stats="mean,count,frac")
    assert out["mean"].iloc[0] == values[0, 0] and out["count"].iloc[0] == 1
    assert out[f"frac_{int(values[0, 0])}"].iloc[0] == 1.0
    assert out[["mean", "count"]].iloc[1].isna().all()
    assert "1 of 2 zone(s) are outside" in caplog.text and "'out'" in caplog.text


def test_zone_coverage_of_points_equals_the_sampled_cells(make_tif):
    values = _grid_values()
    path = make_tif("v.tif", values, transform=T, crs=UTM)
    xy = [(0.5, 7.5), (3.2, 2.9), (7.9, 0.1)]
    zones = gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in xy], crs=UTM)
    cov = zone_coverage(path, zones)
    with rasterio.open(path) as src:
        sampled = [float(v[0]) for v in src.sample(xy)]
    got = cov.apply(values, stats=("mean", "count"))
    assert got["mean"].tolist() == pytest.approx(sampled)
    assert got["count"].tolist() == [1, 1, 1]


# -- nodata override (issue 9.4) ------------------------------------------------------------


def test_nodata_override_equals_exactextract_on_a_tagged_copy(make_tif, tmp_path):
    import exactextract

    values = _grid_values()
    values[:, :2] = 0  # fill, no tag
    path = make_tif("v.tif", values, transform=T, crs=UTM)
    tagged = make_tif("tagged.tif", values, transform=T, crs=UTM, nodata=0.0)
    zones = ZONES.copy()
    zones.loc[3, ["name", "geometry"]] = ["skew", shapely.box(0.3, 0.6, 5.4, 7.2)]
    zones = zones.set_geometry("geometry", crs=UTM)
    ref = exactextract.exact_extract(str(tagged), zones, ["mean", "count"], output="pandas")
    for raster in (path, RasterArray(values, T, UTM, None)):
        out = zonal_stats(raster, zones, stats="mean,count", nodata=0)
        assert out["mean"].tolist() == pytest.approx(ref["mean"].tolist())
        assert out["count"].tolist() == pytest.approx(ref["count"].tolist())
    plain = zonal_stats(path, zones, stats="count")
    assert plain["count"].iloc[0] > ref["count"].iloc[0]  # the zeros were counted


def test_ndvi_nodata_override_masks_the_fill(make_tif):
    from terrapipe.geo.timeseries import ndvi_from_files

    red = np.full((8, 8), 1000, "uint16")
    nir = np.full((8, 8), 3000, "uint16")
    red[:, :3] = 0
    nir[:, :3] = 0
    nir[0, 5] = 0  # NIR fill only
    r = make_tif("red.tif", red, transform=T, crs=UTM)
    n = make_tif("nir.tif", nir, transform=T, crs=UTM)
    out = ndvi_from_files(r, n, nodata=0).array
    expected = np.where((red == 0) | (nir == 0), np.nan, (3000 - 1000) / (3000 + 1000))
    np.testing.assert_allclose(out, expected, equal_nan=True, rtol=1e-6)
    assert np.isfinite(ndvi_from_files(r, n).array[0, 5])  # without it, 0 is a reflectance


# -- the whole Natural Earth countries layer as zones (issue 9.6) ---------------------------


def _naturalearth() -> gpd.GeoDataFrame:
    import pyogrio

    shp = (
        Path(pyogrio.__file__).parent / "tests/fixtures/naturalearth_lowres/naturalearth_lowres.shp"
    )
    if not shp.exists():
        pytest.skip(f"the installed pyogrio ships no Natural Earth fixture ({shp})")
    return gpd.read_file(shp)


def test_zone_coverage_over_all_countries_equals_exactextract(make_tif):
    """The NDVI series path (coverage reused per date) with world zones over a UTM scene."""
    import exactextract
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    countries = _naturalearth()
    values = np.random.default_rng(2).uniform(-1, 1, (120, 150)).astype("float32")
    path = make_tif(
        "ndvi.tif",
        values,
        transform=Affine(2000, 0, 350000, 0, -2000, 8900000),
        crs="EPSG:32719",
        nodata=-9999.0,
    )
    cov = zone_coverage(path, countries)
    got = cov.apply(values, stats=("mean", "count"))
    with rasterio.open(path) as src:
        outline = shape(
            transform_geom(src.crs, "EPSG:4326", mapping(shapely.box(*src.bounds)), precision=-1)
        )
    touching = countries[countries.intersects(outline)]
    assert len(touching) >= 2
    ref = exactextract.exact_extract(
        str(path), touching.to_crs("EPSG:32719"), ["mean", "count"], output="pandas"
    )
    assert got.loc[touching.index, "mean"].tolist() == pytest.approx(ref["mean"].tolist())
    assert got.loc[touching.index, "count"].tolist() == pytest.approx(ref["count"].tolist())
    rest = got.drop(index=touching.index)
    assert rest["mean"].isna().all() and (rest["count"] == 0).all()
    assert "Antarctica" in set(countries.loc[rest.index, "name"])


def test_zonal_stats_outside_zone_warning_names_it(make_tif, caplog):
    countries = _naturalearth()
    path = make_tif(
        "v.tif",
        _grid_values(),
        transform=Affine(1000, 0, 350000, 0, -1000, 8900000),
        crs="EPSG:32719",
    )
    with caplog.at_level("WARNING", logger="terrapipe"):
        out = zonal_stats(path, countries, stats="mean")
    assert out["mean"].notna().sum() == 1
    assert f"{len(countries) - 1} of {len(countries)} zone(s) are outside" in caplog.text
    assert "('Fiji')" in caplog.text  # the first zone (index 0) is named by its name column
