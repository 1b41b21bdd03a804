"""The five region workflows on the sample region, checked against independent
computations (direct rasterio reads, shapely brute force, numpy)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from rio_cogeo.cogeo import cog_validate

from terrapipe import submit
from terrapipe.core.registry import find_workflow

BLOCK = "Narmada Pradesh/Sonpur/Amarkantak"


def block_geometry(region, crs) -> shapely.Geometry:
    admin = gpd.read_parquet(region.path("admin_boundaries"))
    state, district, block = BLOCK.split("/")
    row = admin[(admin.state == state) & (admin.district == district) & (admin.block == block)]
    assert len(row) == 1
    return row.to_crs(crs).geometry.iloc[0]


def layer(run, dataset: str) -> dict:
    for inst in run.instances:
        out = inst.outputs
        if isinstance(out, dict):
            for value in [out, *out.values()]:
                if isinstance(value, dict) and value.get("layer", {}).get("dataset") == dataset:
                    return value["layer"]
    raise AssertionError(f"no layer {dataset} in run")


def test_catchment_area_clip_equals_direct_window_read(region, params) -> None:
    run = submit("catchment-area", params)
    assert run.state == "succeeded", run.error
    out = layer(run, "catchment-area")["files"][0]
    assert cog_validate(str(out))[0]
    with rasterio.open(out) as clip, rasterio.open(region.path("flow_accumulation")) as src:
        assert clip.crs == src.crs and clip.nodata is not None
        data = clip.read(1, masked=True)
        # independent: read the same window of the source directly
        window = rasterio.windows.from_bounds(*clip.bounds, transform=src.transform)
        direct = src.read(1, window=window.round_offsets().round_lengths())
        assert direct.shape == data.shape
        inside = ~data.mask
        assert inside.sum() > 100
        np.testing.assert_array_equal(data.data[inside], direct[inside])
        # pixels whose centre is in the block are kept, the rest is nodata
        geom = block_geometry(region, clip.crs)
        centres = rasterio.features.geometry_mask([geom], data.shape, clip.transform, invert=True)
        assert (inside & ~centres).sum() <= 0.02 * inside.sum()
        assert (centres & ~inside).sum() == 0


def test_drainage_lines_equal_shapely_intersection(region, params) -> None:
    run = submit("drainage-lines", params)
    assert run.state == "succeeded", run.error
    out = gpd.read_parquet(layer(run, "drainage-lines")["files"][0])
    source = gpd.read_parquet(region.path("drainage_lines"))
    geom = block_geometry(region, source.crs)
    expected = shapely.intersection(source.geometry.values, geom)
    expected_length = float(shapely.length(expected).sum())
    assert len(out) > 0 and "order" in out.columns
    assert out.to_crs(source.crs).length.sum() == pytest.approx(expected_length, rel=1e-6)
    # 1 m: the ROI's edges are densified when it is reprojected for the clip
    assert out.to_crs(source.crs).within(geom.buffer(1.0)).all()


def test_facilities_proximity_matches_brute_force(region, params) -> None:
    run = submit("facilities-proximity", params)
    assert run.state == "succeeded", run.error
    files = layer(run, "facilities-proximity")["files"]
    table = gpd.read_parquet(files[0])
    villages = gpd.read_parquet(region.path("villages"))
    facilities = gpd.read_parquet(region.path("facilities"))
    utm = villages.estimate_utm_crs()
    geom = block_geometry(region, villages.crs)
    expected_ids = set(villages[villages.intersects(geom)].village_id)
    assert set(table.village_id) == expected_ids
    v = table.to_crs(utm)
    f = facilities.to_crs(utm)
    for kind in sorted(facilities.kind.unique()):
        targets = f[f.kind == kind].geometry.values
        for geom_v, got in zip(v.geometry.values, v[f"dist_{kind}_m"], strict=True):
            brute = min(geom_v.distance(t) for t in targets)
            assert got == pytest.approx(brute, rel=1e-6, abs=0.01)
    assert Path(files[1]).read_text().splitlines()[0].startswith("village_id")


def test_stream_order_outputs_are_consistent(region, params) -> None:
    run = submit("stream-order", {**params, "threshold": "50"})
    assert run.state == "succeeded", run.error
    raster = layer(run, "stream-order")["files"][0]
    assert cog_validate(str(raster))[0]
    lines = gpd.read_parquet(layer(run, "stream-lines")["files"][0])
    table = gpd.read_parquet(layer(run, "stream-order-by-village")["files"][0])
    with rasterio.open(raster) as src:
        order = src.read(1)
        assert src.nodata == 255
        values = set(np.unique(order[order != 255]).tolist())
        assert 0 in values and max(values) >= 2
        assert set(lines["order"]) <= values - {0}
        # brute force per village: area of its cells (centre inside) of each order, as a
        # percentage of the village's whole area (parts outside the ROI hold no streams)
        cell_area = abs(src.transform.a * src.transform.e)
        checked = 0
        for _, row in table.to_crs(src.crs).iterrows():
            inside = rasterio.features.geometry_mask(
                [row.geometry], order.shape, src.transform, invert=True
            )
            if inside.sum() < 50:
                continue
            checked += 1
            for k in sorted(values - {0}):
                brute = 100.0 * (order[inside] == k).sum() * cell_area / row.geometry.area
                assert row[f"pct_order_{k}"] == pytest.approx(brute, abs=3.0)
        assert checked >= 3


def test_ndvi_series_incremental_and_equal_to_numpy(region, params) -> None:
    first = submit("ndvi-timeseries", {**params, "end": "2024-06-30"})
    assert first.state == "succeeded", first.error
    assert len(first.nodes["ndvi"]) == 6
    full = submit("ndvi-timeseries", params)
    assert full.state == "succeeded", full.error
    states = [i.state for i in full.nodes["ndvi"]]
    assert states == ["cached"] * 6 + ["succeeded"] * 6
    assert full.nodes["coverage"].state == "cached"  # computed once, reused by new dates
    series = layer(full, "ndvi-series")
    table = __import__("pandas").read_parquet(series["files"][1])
    assert table["date"].nunique() == 12
    # independent: NDVI from the raw bands, mean over cells whose centre is in a village
    villages = gpd.read_parquet(region.path("villages"))
    when = "2024-08-15"
    red_path, nir_path = region.band_paths(when)
    with rasterio.open(red_path) as r, rasterio.open(nir_path) as n:
        red = r.read(1).astype("float64") * r.scales[0] + r.offsets[0]
        nir = n.read(1).astype("float64") * n.scales[0] + n.offsets[0]
        valid = (r.read(1) != r.nodata) & (n.read(1) != n.nodata) & ((red + nir) != 0)
        ndvi = np.where(valid, (nir - red) / np.where(valid, red + nir, 1), np.nan)
        checked = 0
        for vid in table.village_id.unique()[:5]:
            geom = villages[villages.village_id == vid].to_crs(r.crs).geometry.iloc[0]
            mask = rasterio.features.geometry_mask([geom], ndvi.shape, r.transform, invert=True)
            if mask.sum() < 30:
                continue
            brute = np.nanmean(ndvi[mask])
            got = table[(table.village_id == vid) & (table.date == when)]["ndvi_mean"].iloc[0]
            assert got == pytest.approx(brute, abs=0.02)
            checked += 1
        assert checked >= 2
    assert Path(series["files"][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_is_cached_and_layers_have_stac(region, params, tp_home) -> None:
    submit("catchment-area", params)
    again = submit("catchment-area", params)
    assert set(again.counts()) == {"cached"}
    catalog = json.loads((tp_home / "stac" / "catalog.json").read_text())
    assert any(link["rel"] == "child" for link in catalog["links"])
    item_path = Path(again.nodes["publish"].outputs["stac_items"][0])
    item = json.loads(item_path.read_text())
    assert item["properties"]["proj:code"] == "EPSG:32644"
    assert any(link["rel"] == "derived_from" for link in item["links"])


def test_new_algorithm_version_makes_a_new_layer_version(region, params, monkeypatch) -> None:
    from terrapipe.pipelines.catchment_area import ClipCatchment
    from terrapipe.publish.layers import list_layers
    from terrapipe.store import open_database

    submit("catchment-area", params)
    monkeypatch.setattr(ClipCatchment, "version", 2)
    wf = find_workflow("catchment-area")
    run = submit(wf, params)
    assert run.nodes["clip-catchment"].reason == "version 1 -> 2"
    with open_database() as db:
        versions = sorted(
            (la.layer_version, la.algorithm_version)
            for la in list_layers(db, dataset="catchment-area")
        )
    assert versions == [(1, "1"), (2, "2")]
