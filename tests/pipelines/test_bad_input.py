"""Bad input to the geo workflows: one clear line naming the value, exit code 2."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(
    ("roi", "message"),
    [
        ("Narmada Pradesh/Sonpur/Amarkantek", "Amarkantak"),  # close match suggested
        ("10,10,11,11", "does not"),  # bbox far away from the data
    ],
)
def test_bad_roi_exits_2(cli, region, roi, message) -> None:
    code, out, err = cli(
        "run", "catchment-area", "-p", f"roi={roi}", "-p", f"data={region.directory}"
    )
    assert code == 2, out + err
    assert message in err
    assert "Traceback" not in err


def test_not_a_sample_folder_exits_2(cli, tmp_path) -> None:
    code, _, err = cli("run", "drainage-lines", "-p", "roi=0,0,1,1", "-p", f"data={tmp_path}")
    assert code == 2
    assert "not a complete sample-data folder" in err


def test_corrupt_raster_exits_2_naming_the_file(cli, tmp_path) -> None:
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"this is not a tiff at all")
    code, _, err = cli("run", "clip-raster", "-p", f"raster={bad}", "-p", "roi=0,0,1,1")
    assert code == 2
    assert "broken.tif" in err and "Traceback" not in err


def test_missing_file_exits_2(cli, tmp_path) -> None:
    code, _, err = cli(
        "run",
        "zonal-stats",
        "-p",
        f"raster={tmp_path / 'no.tif'}",
        "-p",
        f"zones={tmp_path / 'no.gpkg'}",
    )
    assert code == 2
    assert "file not found" in err


def test_invalid_roi_is_repaired_and_reported(cli, region) -> None:
    minx, miny, maxx, maxy = region.data["bbox_4326"]
    x0, x1 = minx + (maxx - minx) * 0.3, minx + (maxx - minx) * 0.6
    y0, y1 = miny + (maxy - miny) * 0.3, miny + (maxy - miny) * 0.6
    bowtie = f"POLYGON(({x0} {y0}, {x1} {y0}, {x0} {y1}, {x1} {y1}, {x0} {y0}))"
    code, out, err = cli(
        "run", "drainage-lines", "-p", f"roi={bowtie}", "-p", f"data={region.directory}", "--json"
    )
    assert code == 0, err
    assert "repaired with make_valid" in err and "Self-intersection" in err
    region_out = json.loads(out)["nodes"]["region"]["outputs"]["roi"]
    assert region_out["repaired"] is True
