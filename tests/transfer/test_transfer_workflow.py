"""The download -> crop -> convert -> publish workflow over a real catalog and HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import box
from transfer_data import write_raster

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets
from terrapipe.pipelines.download_crop_convert_publish import build_workflow

# write_raster: EPSG:32643, 30 m pixels from (500000, 2000000): lon ~75, lat ~18.08
BBOX = "75.0,17.95,75.1,18.05"


def test_fan_out_download_crop_convert_publish(db, http_server, tmp_path):
    sources = {}
    datasets = []
    for i in range(3):
        src = tmp_path / "src" / f"scene{i}.tif"
        src.parent.mkdir(exist_ok=True)
        write_raster(src, size=600)
        http_server.state.files[src.name] = src.read_bytes()
        sources[src.name] = src
        datasets.append(
            Dataset(
                entry_id=f"SCENE_{i}",
                collection="wf",
                time_start=datetime(2024, 5, i + 1, tzinfo=UTC),
                footprint=box(74.9, 17.9, 75.2, 18.1),
                uris=(DatasetURI(http_server.url("pub", src.name), size=src.stat().st_size),),
            )
        )
    save_datasets(db, datasets)
    params = {
        "query": '{"collection": "wf"}',
        "download_directory": str(tmp_path / "dl"),
        "bbox": BBOX,
        "publish_folder": str(tmp_path / "www"),
        "url_prefix": "https://maps.example.org/data",
    }
    run = build_workflow().run(params, workers=3)
    assert run.state == "succeeded", {n: [i.error for i in v] for n, v in run.nodes.items()}
    published = [i.outputs for i in run.nodes["publish"]]
    assert len(published) == 3
    for out in published:
        (url,) = out["urls"]
        assert url.startswith(f"https://maps.example.org/data/{out['dataset_id']}/")
        local = tmp_path / "www" / url.removeprefix("https://maps.example.org/data/")
        assert cog_validate(local)[0]
        with rasterio.open(local) as cog:
            name = local.name
            with rasterio.open(sources[name]) as src:
                window = src.window(*cog.bounds).round_offsets().round_lengths()
                np.testing.assert_array_equal(cog.read(1), src.read(1, window=window))
            assert 0 < cog.width < 600
    requests = len(http_server.state.requests)
    again = build_workflow().run(params, workers=3)
    assert again.state == "succeeded"
    assert len(http_server.state.requests) == requests  # recorded downloads were skipped
    assert [i.state for i in again.nodes["convert"]] == ["cached"] * 3


def test_safety_limit_fails_the_select_node(db, http_server, tmp_path):
    save_datasets(
        db,
        [
            Dataset(entry_id=f"D{i}", collection="many", uris=(DatasetURI("http://x/a.tif"),))
            for i in range(3)
        ],
    )
    run = build_workflow().run(
        {
            "query": '{"collection": "many"}',
            "safety_limit": 2,
            "publish_folder": str(tmp_path),
            "url_prefix": "http://x",
        },
    )
    assert run.state == "failed"
    assert "3 datasets match" in run.nodes["select"].error
    assert http_server.state.requests == []


def test_publish_over_sftp(db, http_server, sftp_server, tmp_path):
    src = tmp_path / "v.geojson"
    src.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"a": 1},'
        ' "geometry": {"type": "Point", "coordinates": [75.05, 18.0]}}]}'
    )
    http_server.state.files[src.name] = src.read_bytes()
    save_datasets(
        db,
        [
            Dataset(
                entry_id="VEC", collection="v", uris=(DatasetURI(http_server.url("pub", src.name)),)
            )
        ],
    )
    destination = f"sftp://127.0.0.1:{sftp_server.port}/srv/pub"
    settings = tmp_path / "providers.yml"
    settings.write_text(
        f"'{destination}':\n  username: {sftp_server.user}\n  password: {sftp_server.password}\n"
        f"  known_hosts: {sftp_server.known_hosts}\n"
    )
    run = build_workflow().run(
        {
            "query": '{"collection": "v"}',
            "download_directory": str(tmp_path / "dl"),
            "publish_folder": destination,
            "url_prefix": "https://x.org/pub",
            "provider_settings": str(settings),
        }
    )
    assert run.state == "succeeded", {n: [i.error for i in v] for n, v in run.nodes.items()}
    (out,) = [i.outputs for i in run.nodes["publish"]]
    (url,) = out["urls"]
    assert url == f"https://x.org/pub/{out['dataset_id']}/v.parquet"
    remote = sftp_server.root / "srv" / "pub" / str(out["dataset_id"]) / "v.parquet"
    frame = gpd.read_parquet(remote)
    assert frame.geometry.iloc[0].x == 75.05 and list(frame["a"]) == [1]
    assert sftp_server.password not in str(run.nodes["publish"][0].outputs)
