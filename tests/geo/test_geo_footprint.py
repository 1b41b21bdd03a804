"""ROIs that cannot be projected whole onto the data: world, polar and antimeridian boxes.

Each clip is compared with a direct rasterio read of the window expected, or with a mask of
the pixel centres computed independently with pyproj.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from tests.rasters import write_geotiff

from terrapipe.errors import RoiError, RoiOutsideData
from terrapipe.geo.raster import clip_raster
from terrapipe.geo.roi import parse_roi


def _scene(tmp_path, name, crs, origin, size, res):
    """A float raster written by rasterio directly (not by the code under test)."""
    values = np.random.default_rng(5).uniform(1, 100, (size, size)).astype("float32")
    path = write_geotiff(tmp_path / name, values, crs=crs, origin=origin, res=res, nodata=-1.0)
    return path, values


def _clip(path, roi, tmp_path):
    out = clip_raster(path, parse_roi(roi), tmp_path / "clip.tif")
    with rasterio.open(out) as src:
        return src.read(1, masked=True), src.transform


def _direct(path):
    with rasterio.open(path) as src:
        return src.read(1, window=((0, src.height), (0, src.width))), src.transform


@pytest.mark.parametrize(
    ("crs", "origin", "roi"),
    [
        ("EPSG:3031", (-500000.0, 500000.0), "-180,-90,180,-60"),  # Antarctic polar stereo
        ("EPSG:3413", (-400000.0, 400000.0), "-180,70,180,90"),  # Arctic polar stereo
        ("EPSG:32633", (400000.0, 7900000.0), "-180,60,180,90"),  # UTM 33N at 70 N
        ("EPSG:32601", (100000.0, 100000.0), "170,-10,-170,10"),  # UTM 1N across 180
        ("EPSG:32601", (100000.0, 100000.0), "-180,-90,180,90"),
    ],
)
def test_box_containing_the_scene_keeps_it_whole(tmp_path, crs, origin, roi):
    path, _ = _scene(tmp_path, "scene.tif", crs, origin, 50, 4000.0)
    clipped, transform = _clip(path, roi, tmp_path)
    direct, direct_transform = _direct(path)
    assert transform.almost_equals(direct_transform)
    assert not clipped.mask.any()
    np.testing.assert_array_equal(clipped.data, direct)


def _lon(path, offset):
    """Longitude (0..360, continuous across 180) of every cell centre (0.5) or corner (0)."""
    with rasterio.open(path) as src:
        n = 0 if offset else 1
        rows, cols = np.mgrid[0 : src.height + n, 0 : src.width + n]
        xs, ys = rasterio.transform.xy(
            src.transform, rows.ravel(), cols.ravel(), offset="center" if offset else "ul"
        )
        lon, _ = Transformer.from_crs(src.crs, 4326, always_xy=True).transform(xs, ys)
    return (np.asarray(lon) % 360.0).reshape(rows.shape)


@pytest.mark.parametrize(
    "roi",
    [
        "179.9,-10,-170,10",  # bbox written west > east (RFC 7946)
        "POLYGON ((179.9 -10, 190 -10, 190 10, 179.9 10, 179.9 -10))",  # beyond 180
        '{"type": "MultiPolygon", "coordinates": [[[[179.9, -10], [180, -10], [180, 10], '
        "[179.9, 10], [179.9, -10]]], [[[-180, -10], [-170, -10], [-170, 10], [-180, 10], "
        "[-180, -10]]]]}",  # split at 180 (RFC 7946)
    ],
    ids=["bbox", "wkt-beyond-180", "geojson-split"],
)
def test_box_across_the_antimeridian_clips_east_of_its_west_edge(tmp_path, roi):
    # UTM zone 1N, x 100..300 km: longitudes about 179.4 E to 178.2 W
    path, values = _scene(tmp_path, "scene.tif", "EPSG:32601", (100000.0, 100000.0), 50, 4000.0)
    clipped, transform = _clip(path, roi, tmp_path)
    lon = _lon(path, 0.5)
    inside = lon >= 179.9  # cells whose centre is in the ROI keep their value
    assert 0 < inside.sum() < inside.size
    corners = _lon(path, 0)
    east = np.maximum.reduce(
        [corners[:-1, :-1], corners[:-1, 1:], corners[1:, :-1], corners[1:, 1:]]
    )
    cols = np.flatnonzero((east > 179.9).any(axis=0))  # columns the ROI reaches into
    with rasterio.open(path) as src:  # the expected window: first to last column reached
        window = ((0, src.height), (int(cols[0]), int(cols[-1]) + 1))
        direct = src.read(1, window=window)
        assert transform.almost_equals(src.window_transform(window))
    sure = np.abs(lon - 179.9)[:, cols[0] : cols[-1] + 1] > 1e-3  # away from the edge
    expected_mask = ~inside[:, cols[0] : cols[-1] + 1]
    np.testing.assert_array_equal(clipped.mask[sure], expected_mask[sure])
    np.testing.assert_array_equal(clipped.data[~clipped.mask], direct[~clipped.mask])
    assert values.shape[0] == clipped.shape[0]


def test_box_across_the_antimeridian_missing_the_scene_is_outside(tmp_path):
    path, _ = _scene(tmp_path, "scene.tif", "EPSG:32601", (100000.0, 100000.0), 50, 4000.0)
    with pytest.raises(RoiOutsideData, match="scene.tif"):
        clip_raster(path, parse_roi("175,20,-175,30"), tmp_path / "x.tif")


@pytest.mark.parametrize("text", ["3,2,1,4", "10,10,5,20", "100,0,-50,1"])
def test_swapped_corners_stay_an_error(text):
    with pytest.raises(RoiError, match="antimeridian"):
        parse_roi(text)
