from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terrapipe.errors import InvalidInput
from terrapipe.geo.naming import fold, layer_name, output_path, slugify
from terrapipe.geo.roi import roi_from_bbox


def test_layer_name_from_dataset_roi_and_version():
    assert layer_name("drainage-lines", "Narmada Pradesh/Bālāgiri/Lānji", version=2) == (
        "drainage_lines_narmada_pradesh_balagiri_lanji_v2"
    )


def test_layer_name_takes_the_roi_slug():
    roi = roi_from_bbox("80,21,80.1,21.1", label="My Área")
    assert layer_name("NDVI Series", roi, version=1) == "ndvi_series_my_area_v1"


def test_output_path_is_built_from_the_same_name(tmp_path: Path):
    p = output_path(tmp_path, "catchment-area", "Wainganga/Mandla/Niwās", 3, ".TIF")
    assert p == tmp_path / "catchment_area" / "catchment_area_wainganga_mandla_niwas_v3.tif"


@pytest.mark.parametrize("version", [0, -1, 1.5, "2", True])
def test_bad_version_is_named(version):
    with pytest.raises(InvalidInput, match="version"):
        layer_name("x", "y", version=version)


def test_unnameable_text_is_rejected():
    with pytest.raises(InvalidInput, match="'___'"):
        slugify("___")


@given(st.text(min_size=1, max_size=40))
def test_slugs_are_ascii_lowercase_and_file_safe(text):
    try:
        slug = slugify(text)
    except InvalidInput:
        assert fold(text) == ""
        return
    assert slug.isascii() and slug == slug.lower()
    assert all(ch.isalnum() or ch == "_" for ch in slug)
    assert not slug.startswith("_") and not slug.endswith("_")
