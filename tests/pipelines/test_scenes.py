"""Parsing of the NDVI pipeline's scene parameters: band mappings and dates in names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terrapipe.errors import InvalidInput
from terrapipe.pipelines.scenes import file_date as date_of
from terrapipe.pipelines.scenes import group_scenes, parse_bands

dates = st.dates(min_value=dt.date(1972, 1, 1), max_value=dt.date(2099, 12, 31))


@given(when=dates, processed=dates, path=st.integers(1, 233), row=st.integers(1, 248))
def test_landsat_names_give_the_acquisition_date(when, processed, path, row) -> None:
    name = f"LC08_L1TP_{path:03d}{row:03d}_{when:%Y%m%d}_{processed:%Y%m%d}_02_T1_B4.TIF"
    assert date_of(Path(name)) == when


@given(when=dates, sep=st.sampled_from(["_", "-", "."]))
def test_iso_dates_in_names(when, sep) -> None:
    assert date_of(Path(f"red{sep}{when.isoformat()}.tif")) == when


@given(red=st.integers(1, 99), nir=st.integers(1, 99))
def test_band_numbers(red, nir) -> None:
    assert parse_bands(f"nir:{nir}, red:{red}") == {"red": red, "nir": nir}


@pytest.mark.parametrize("text", ["red:B4", "red:B4,red:B5,nir:B5", "red:0,nir:1", "B4,B5"])
def test_bad_band_mappings_name_the_parameter(text) -> None:
    with pytest.raises(InvalidInput, match="parameter 'bands'"):
        parse_bands(text)


def test_band_files_pair_by_scene_not_by_folder_listing_order() -> None:
    when = dt.date(2024, 3, 1)
    files = [
        (Path(f"/d/{pr}/LC08_L1TP_{pr}_20240301_20240310_02_T1_{band}.TIF"), None)
        for pr in ("145045", "145046")
        for band in ("B5", "B3", "B4")
    ]
    scenes = group_scenes(files, parse_bands("red:B4,nir:B5"), source="/d")
    assert len(scenes) == 2 and {s.date for s in scenes} == {when.isoformat()}
    for s in scenes:
        assert s.red.endswith("_B4.TIF") and s.nir.endswith("_B5.TIF")
        assert Path(s.red).parent == Path(s.nir).parent
