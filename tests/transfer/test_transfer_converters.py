"""Converter registry and the built-in COG / GeoParquet converters on generated files."""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import Point, Polygon
from transfer_data import write_raster

from terrapipe.errors import InvalidInput, NoConverter
from terrapipe.transfer.converters import (
    ConversionManager,
    Converter,
    DefaultConversionManager,
    ParameterSelector,
    RasterToCOG,
)


class ProductManager(ConversionManager):
    """A manager of the test."""


@ProductManager.register()
class Generic(Converter):
    PARAMETER_SELECTORS = (ParameterSelector(matches=lambda d: d.entry_id.startswith("S"), p=1),)

    def __init__(self, p):
        self.p = p


@ProductManager.register()
class Special(Generic):
    PARAMETER_SELECTORS = (
        ParameterSelector(matches=lambda d: d.entry_id.startswith("S2"), p=2),
        ParameterSelector(matches=lambda d: d.path.suffix == ".xyz", p=3),
    )


def test_first_matching_selector_wins_and_no_match_is_clear(tmp_path):
    m = ProductManager(tmp_path)
    s1, s2 = SimpleNamespace(entry_id="S1_A"), SimpleNamespace(entry_id="S2_B")
    assert (type(m.select(s1, "a.nc")), m.select(s1, "a.nc").p) == (Generic, 1)
    assert m.select(s2, "a.nc").p == 1  # Generic was registered first
    assert (type(m.select(SimpleNamespace(entry_id="L8"), "a.xyz")), 3) == (Special, 3)
    with pytest.raises(NoConverter, match="'b.nc'.*Generic, Special"):
        m.select(SimpleNamespace(entry_id="L8"), "b.nc")
    assert DefaultConversionManager.converters != ProductManager.converters


@pytest.mark.parametrize("driver,suffix", [("GTiff", ".tif"), ("JP2OpenJPEG", ".jp2")])
def test_raster_to_valid_cog_with_same_pixels(tmp_path, driver, suffix):
    src = tmp_path / f"in{suffix}"
    write_raster(src, driver=driver, size=300, dtype="uint16")
    (out,) = DefaultConversionManager(tmp_path).convert(SimpleNamespace(), src, tmp_path / "o")
    valid, errors, _ = cog_validate(out)
    assert valid, errors
    with rasterio.open(out) as cog, rasterio.open(src) as orig:
        np.testing.assert_array_equal(cog.read(), orig.read())
        assert cog.crs == orig.crs and cog.transform == orig.transform
        assert cog.nodata == orig.nodata
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_netcdf_variable_to_cog(tmp_path):
    nc = tmp_path / "in.nc"
    data = write_raster(nc, driver="netCDF", size=200, dtype="float32")
    manager = DefaultConversionManager(tmp_path)
    converter = manager.select(SimpleNamespace(), nc)
    assert isinstance(converter, RasterToCOG)
    (out,) = manager.convert(SimpleNamespace(), nc, tmp_path / "o", variable="Band1")
    assert out.name == "in_Band1.tif" and cog_validate(out)[0]
    with rasterio.open(out) as cog:
        np.testing.assert_array_equal(cog.read(), data)


def test_vector_to_geoparquet_same_geometries(tmp_path):
    frame = gpd.GeoDataFrame(
        {"name": ["a", "b"], "v": [1.5, 2.5]},
        geometry=[Point(77.1, 12.9), Polygon([(77, 12), (78, 12), (78, 13), (77, 12)])],
        crs="EPSG:4326",
    )
    src = tmp_path / "in.geojson"
    frame.to_file(src, driver="GeoJSON")
    (out,) = DefaultConversionManager().convert(SimpleNamespace(), src, tmp_path / "o")
    back = gpd.read_parquet(out)
    assert back.crs.to_epsg() == 4326 and list(back["name"]) == ["a", "b"]
    assert all(a.equals(b) for a, b in zip(back.geometry, frame.geometry, strict=True))


def test_unknown_file_has_no_converter(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(NoConverter):
        DefaultConversionManager().convert(SimpleNamespace(), junk, tmp_path)
    with pytest.raises(InvalidInput, match="not found"):
        DefaultConversionManager().convert(SimpleNamespace(), tmp_path / "none.tif", tmp_path)
