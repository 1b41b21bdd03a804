from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.io import DatasetReader
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from terrapipe.errors import RasterError, RoiOutsideData
from terrapipe.geo.raster import clip_raster, describe_raster
from terrapipe.geo.roi import make_roi, parse_roi

T = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 2_000_000.0)


@pytest.fixture
def src(make_tif) -> Path:
    data = np.random.default_rng(0).uniform(0, 100, (80, 100)).astype("float32")
    return make_tif("src.tif", data, transform=T, nodata=-1.0)


def test_clip_equals_direct_window_read(src: Path, tmp_path: Path):
    # ROI on pixel edges: cols 20..44, rows 12..29
    roi = parse_roi("500200,1999700,500450,1999880", crs="EPSG:32644")
    out = clip_raster(src, roi, tmp_path / "out.tif")
    with rasterio.open(src) as ref:
        expected = ref.read(1, window=Window(20, 12, 25, 18))
        expected_transform = ref.window_transform(Window(20, 12, 25, 18))
    with rasterio.open(out) as got:
        assert got.crs.to_epsg() == 32644
        assert got.nodata == -1.0
        assert got.transform.almost_equals(expected_transform)
        np.testing.assert_array_equal(got.read(1), expected)
    assert cog_validate(str(out))[0]


def test_clip_masks_cells_outside_a_polygon(src: Path, tmp_path: Path):
    # 513 m legs: no pixel centre lies exactly on the hypotenuse (no boundary ambiguity)
    tri = shapely.Polygon([(500_100, 1_999_900), (500_613, 1_999_900), (500_100, 1_999_387)])
    roi = make_roi(tri, "EPSG:32644", label="tri", kind="wkt")
    out = clip_raster(src, roi, tmp_path / "tri.tif")
    with rasterio.open(out) as got, rasterio.open(src) as ref:
        arr = got.read(1)
        rows, cols = np.mgrid[0 : got.height, 0 : got.width]
        xs, ys = rasterio.transform.xy(got.transform, rows.ravel(), cols.ravel())
        inside = shapely.contains_xy(tri, np.array(xs), np.array(ys)).reshape(arr.shape)
        window = rasterio.windows.from_bounds(*got.bounds, transform=ref.transform)
        direct = ref.read(1, window=window.round_offsets().round_lengths())
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(arr[inside], direct[inside])
    assert (arr[~inside] == -1.0).all()
    assert cog_validate(str(out))[0]


def test_clip_reads_only_a_window(src: Path, tmp_path: Path, monkeypatch):
    calls = []
    original = DatasetReader.read

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("window"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DatasetReader, "read", spy)
    roi = parse_roi("500200,1999700,500450,1999880", crs="EPSG:32644")
    clip_raster(src, roi, tmp_path / "out.tif")
    assert calls and all(w is not None and w.width * w.height < 80 * 100 for w in calls)


def test_roi_in_another_crs_is_reprojected_and_source_crs_kept(src: Path, tmp_path: Path):
    to_ll = Transformer.from_crs(32644, 4326, always_xy=True)
    (x0, x1), (y0, y1) = to_ll.transform([500_150, 500_520], [1_999_450, 1_999_850])
    roi = parse_roi(f"{x0},{y0},{x1},{y1}")
    out = clip_raster(src, roi, tmp_path / "ll.tif")
    with rasterio.open(out) as got:
        assert got.crs.to_epsg() == 32644
        arr = got.read(1)
        rows, cols = np.nonzero(arr != -1.0)
        xs, ys = rasterio.transform.xy(got.transform, rows, cols)
    local = roi.to_crs("EPSG:32644").geometry
    assert rows.size > 0
    assert shapely.contains_xy(local.buffer(1e-6), np.array(xs), np.array(ys)).all()
    lo, hi = local.bounds[0], local.bounds[2]
    assert min(xs) - 5 <= lo + 10 and max(xs) + 5 >= hi - 10


def test_roi_outside_raster_names_the_file(src: Path, tmp_path: Path):
    roi = parse_roi("0,0,1000,1000", crs="EPSG:32644")
    with pytest.raises(RoiOutsideData, match="src.tif"):
        clip_raster(src, roi, tmp_path / "o.tif")
    assert not (tmp_path / "o.tif").exists()


def test_corrupt_or_non_raster_file_is_named(tmp_path: Path):
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00this is not really a tiff")
    roi = parse_roi("0,0,1,1")
    with pytest.raises(RasterError, match="corrupt.tif"):
        clip_raster(bad, roi, tmp_path / "o.tif")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(RasterError, match="notes.txt"):
        describe_raster(text)
    with pytest.raises(RasterError, match="missing.tif"):
        clip_raster(tmp_path / "missing.tif", roi, tmp_path / "o.tif")


def test_raster_without_crs_is_named(make_tif, tmp_path: Path):
    path = make_tif("nocrs.tif", np.ones((5, 5), "uint8"), transform=T, crs=None)
    with pytest.raises(RasterError, match=r"no CRS.*nocrs.tif"):
        clip_raster(path, parse_roi("0,0,1,1"), tmp_path / "o.tif")


def test_integer_raster_without_nodata_gets_one(make_tif, tmp_path: Path):
    path = make_tif("lc.tif", np.full((20, 20), 3, "uint8"), transform=T)
    tri = shapely.Polygon([(500_000, 2_000_000), (500_200, 2_000_000), (500_000, 1_999_800)])
    out = clip_raster(path, make_roi(tri, 32644, label="t", kind="wkt"), tmp_path / "lc_c.tif")
    with rasterio.open(out) as got:
        assert got.nodata == 255
        values = set(np.unique(got.read(1)).tolist())
    assert values == {3, 255}
    info = describe_raster(out)
    assert info["epsg"] == 32644 and info["dtype"] == "uint8"
