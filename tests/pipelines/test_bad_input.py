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


def _natural_earth():
    from pathlib import Path

    import pyogrio

    path = Path(pyogrio.__file__).parent / "tests/fixtures/naturalearth_lowres"
    path = path / "naturalearth_lowres.shp"
    if not path.exists():
        pytest.skip(f"pyogrio does not ship Natural Earth countries here: {path}")
    return path


def _world_raster(path):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    values = (np.arange(180 * 90).reshape(90, 180) % 251).astype("float32")
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=180,
        height=90,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_origin(-180, 90, 2, 2),
        nodata=-1,
    ) as dst:
        dst.write(values, 1)
    return path


def test_clip_raster_to_a_country_of_natural_earth(tmp_path, monkeypatch) -> None:
    """`roi=South America/Brazil -p boundaries=ne.shp -p levels=continent,name` through
    the real command; the clip equals a rasterio mask of Brazil's polygon."""
    import os
    import subprocess
    import sys

    import geopandas as gpd
    import numpy as np
    import rasterio
    import rasterio.features

    ne = _natural_earth()
    raster = _world_raster(tmp_path / "world.tif")
    base = [sys.executable, "-m", "terrapipe.cli.main", "run", "clip-raster"]
    common = ["-p", f"raster={raster}", "-p", "roi=South America/Brazil", "-p", f"boundaries={ne}"]
    env = dict(os.environ)

    before = subprocess.run([*base, *common], capture_output=True, text=True, env=env)
    assert before.returncode == 2, before.stderr
    assert "no column(s) ['state'" in before.stderr and "continent" in before.stderr
    assert "levels=" in before.stderr and "Traceback" not in before.stderr

    done = subprocess.run(
        [*base, *common, "-p", "levels=continent,name", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    out = doc["nodes"]["clip-raster"]["outputs"]["layer"]["files"][0]
    countries = gpd.read_file(ne)
    brazil = countries[countries.name == "Brazil"].geometry.iloc[0]
    with rasterio.open(out) as clip, rasterio.open(raster) as src:
        data = clip.read(1, masked=True)
        inside = rasterio.features.geometry_mask([brazil], data.shape, clip.transform, invert=True)
        assert inside.sum() > 50
        assert (inside == ~data.mask).all()
        window = rasterio.windows.from_bounds(*clip.bounds, transform=src.transform)
        direct = src.read(1, window=window.round_offsets().round_lengths())
        np.testing.assert_array_equal(data.data[inside], direct[inside])

    # the setting works as well as the parameter
    monkeypatch.setenv("TERRAPIPE_ADMIN_LEVELS", "continent,name")
    by_setting = subprocess.run(
        [*base, *common, "-p", "roi=south america/brasil"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert by_setting.returncode == 2
    assert "closest: 'Brazil'" in by_setting.stderr


def test_admin_levels_setting_is_for_your_boundaries_not_the_sample(
    cli, region, monkeypatch
) -> None:
    monkeypatch.setenv("TERRAPIPE_ADMIN_LEVELS", "continent,name")
    code, _, err = cli(
        "run",
        "catchment-area",
        "-p",
        "roi=Narmada Pradesh/Sonpur/Amarkantak",
        "-p",
        f"data={region.directory}",
    )
    assert code == 0, err


def test_a_folder_given_as_input_file_exits_2(cli, region, tmp_path) -> None:
    code, _, err = cli(
        "run",
        "drainage-lines",
        "-p",
        "roi=Narmada Pradesh/Sonpur",
        "-p",
        f"data={region.directory}",
        "-p",
        f"lines={tmp_path}",
    )
    assert code == 2 and "'lines'" in err and "is a folder" in err
