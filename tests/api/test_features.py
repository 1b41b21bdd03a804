"""OGC API – Features over a published layer, read by OWSLib and GDAL's OAPIF driver, and a
raster layer read by window over HTTP; every answer checked against geopandas/rasterio on
the layer's own files."""

from __future__ import annotations

import geopandas as gpd
import httpx
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from owslib.ogcapi.features import Features
from rasterio.transform import from_origin
from rasterio.windows import Window

from terrapipe.api.routers.collections import collection_id
from terrapipe.publish.layers import publish_layer

UTM = "EPSG:32643"  # central India, as the sample region


@pytest.fixture
def wells(live, tmp_path):
    rng = np.random.default_rng(7)
    x = rng.uniform(300_000, 360_000, 500)
    y = rng.uniform(2_400_000, 2_460_000, 500)
    frame = gpd.GeoDataFrame(
        {"depth": rng.uniform(5, 90, 500).round(2), "name": [f"well-{i}" for i in range(500)]},
        geometry=shapely.points(x, y),
        crs=UTM,
    )
    path = tmp_path / "wells.parquet"
    frame.to_parquet(path, write_covering_bbox=True, row_group_size=50)
    layer = publish_layer(
        live.db,
        dataset="wells",
        roi="test-block",
        kind="vector",
        algorithm_version=1,
        files=[path],
        workflow="test",
    )
    return frame.to_crs("OGC:CRS84"), collection_id(layer)


def _box_of(frame, bbox):
    return frame[frame.intersects(shapely.box(*bbox))]


def test_collections_list_and_describe(live, wells) -> None:
    frame, cid = wells
    body = httpx.get(f"{live.url}/collections").json()
    (coll,) = [c for c in body["collections"] if c["id"] == cid]
    assert coll["itemType"] == "feature"
    west, south, east, north = coll["extent"]["spatial"]["bbox"][0]
    tb = frame.total_bounds
    assert west <= tb[0] and south <= tb[1] and east >= tb[2] and north >= tb[3]
    assert httpx.get(f"{live.url}/collections/{cid}").json()["id"] == cid


def test_owslib_pages_and_bbox_match_geopandas(live, wells) -> None:
    frame, cid = wells
    client = Features(live.url)
    first = client.collection_items(cid, limit=40, offset=0)
    assert first["numberMatched"] == 500 and first["numberReturned"] == 40
    assert [f["properties"]["name"] for f in first["features"]] == list(frame["name"][:40])
    page = client.collection_items(cid, limit=25, offset=60)  # across a row-group edge
    assert [f["id"] for f in page["features"]] == list(range(60, 85))
    got = [shapely.geometry.shape(f["geometry"]) for f in page["features"]]
    want = frame.geometry.iloc[60:85].to_numpy()
    assert np.allclose(shapely.get_coordinates(got), shapely.get_coordinates(want), atol=1e-9)
    bbox = [float(v) for v in frame.total_bounds]
    bbox = [bbox[0], bbox[1], (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]
    expected = _box_of(frame, bbox)
    found = client.collection_items(cid, bbox=bbox, limit=10_000)
    assert found["numberMatched"] == len(expected) > 0
    assert sorted(f["properties"]["name"] for f in found["features"]) == sorted(expected["name"])
    one = client.collection_item(cid, "17")
    assert one["properties"]["name"] == "well-17"


def test_gdal_oapif_reads_the_layer_with_bbox_and_paging(live, wells) -> None:
    frame, cid = wells
    read = pyogrio.read_dataframe(f"OAPIF:{live.url}", layer=cid)
    assert len(read) == 500
    assert sorted(read["name"]) == sorted(frame["name"])
    bbox = tuple(frame.total_bounds)
    bbox = (bbox[0], bbox[1], (bbox[0] + bbox[2]) / 2, bbox[3])
    part = pyogrio.read_dataframe(f"OAPIF:{live.url}", layer=cid, bbox=bbox)
    assert sorted(part["name"]) == sorted(_box_of(frame, bbox)["name"])


def test_raster_layer_window_over_http(live, tmp_path) -> None:
    data = np.arange(512 * 512, dtype="float32").reshape(512, 512)
    path = tmp_path / "dem.tif"
    profile = {
        "driver": "COG",
        "width": 512,
        "height": 512,
        "count": 1,
        "dtype": "float32",
        "crs": UTM,
        "transform": from_origin(300_000, 2_460_000, 30, 30),
        "nodata": -9999.0,
        "blocksize": 128,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    layer = publish_layer(
        live.db,
        dataset="dem",
        roi="test-block",
        kind="raster",
        algorithm_version=1,
        files=[path],
        workflow="test",
    )
    coll = httpx.get(f"{live.url}/collections/{collection_id(layer)}").json()
    (link,) = [ln for ln in coll["links"] if ln["rel"] == "enclosure"]
    window = Window(300, 200, 64, 32)
    with rasterio.open(f"/vsicurl/{link['href']}") as remote:
        got = remote.read(1, window=window)
    assert np.array_equal(got, data[200:232, 300:364])
    ranged = httpx.get(link["href"], headers={"Range": "bytes=0-15"})
    assert ranged.status_code == 206 and len(ranged.content) == 16
