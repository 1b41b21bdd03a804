"""Layer records (versioning rules) and STAC items, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.transform import from_origin

from terrapipe.errors import InvalidInput
from terrapipe.publish.layers import get_layer, list_layers, publish_layer
from terrapipe.publish.stac import write_item
from terrapipe.store.db import Database

SQUARE = {"type": "Polygon", "coordinates": [[[76, 20], [77, 20], [77, 21], [76, 21], [76, 20]]]}


def make_raster(path: Path) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=6,
        count=1,
        dtype="int16",
        crs="EPSG:32643",
        transform=from_origin(500000, 2000000, 30, 30),
        nodata=-1,
    ) as dst:
        dst.write(np.arange(48, dtype="int16").reshape(1, 6, 8))
    return path


def test_versioning_new_algorithm_new_version_same_updates(db: Database, tmp_path: Path) -> None:
    f = make_raster(tmp_path / "a.tif")
    common = {
        "dataset": "stream-order",
        "roi": "Bālāghāt Block",
        "kind": "raster",
        "files": [f],
        "workflow": "stream-order",
    }
    first = publish_layer(db, algorithm_version=1, **common)
    assert first.name == "stream_order_balaghat_block_v1" and first.layer_version == 1
    again = publish_layer(db, algorithm_version=1, properties={"note": "rerun"}, **common)
    assert again.name == first.name and again.properties == {"note": "rerun"}
    assert again.updated_at >= first.updated_at
    bumped = publish_layer(db, algorithm_version=2, **common)
    assert bumped.layer_version == 2 and bumped.name.endswith("_v2")
    names = [la.name for la in list_layers(db)]
    assert sorted(names) == ["stream_order_balaghat_block_v1", "stream_order_balaghat_block_v2"]
    assert [la.name for la in list_layers(db, latest=True)] == ["stream_order_balaghat_block_v2"]
    assert get_layer(db, "stream_order_balaghat_block_v1").algorithm_version == "1"


def test_bad_kind_and_no_files(db: Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="layer kind"):
        publish_layer(
            db,
            dataset="x",
            roi="r",
            kind="image",
            algorithm_version=1,
            files=[tmp_path],
            workflow="w",
        )
    with pytest.raises(InvalidInput, match="no files"):
        publish_layer(
            db, dataset="x", roi="r", kind="raster", algorithm_version=1, files=[], workflow="w"
        )


def test_stac_item_has_projection_raster_processing_and_lineage(db: Database, tmp_path: Path):
    f = make_raster(tmp_path / "order.tif")
    layer = publish_layer(
        db,
        dataset="stream-order",
        roi="b1",
        kind="raster",
        algorithm_version=3,
        files=[f],
        workflow="stream-order",
    )
    root = tmp_path / "stac"
    path = write_item(
        root, layer, geometry=SQUARE, bbox=[76, 20, 77, 21], derived_from=["/data/dem.tif"]
    )
    item = json.loads(path.read_text())
    with rasterio.open(f) as src:  # independent reading of the same file
        assert item["properties"]["proj:code"] == src.crs.to_string()
        assert item["properties"]["proj:shape"] == [src.height, src.width]
        band = item["assets"]["order"]["raster:bands"][0]
        assert band["nodata"] == src.nodata and band["data_type"] == src.dtypes[0]
    assert item["properties"]["processing:software"]["terrapipe"]
    assert item["properties"]["terrapipe:algorithm_version"] == "3"
    assert any(
        link["rel"] == "derived_from" and link["href"].endswith("dem.tif") for link in item["links"]
    )
    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    collection = catalog.get_child("stream-order")
    assert [i.id for i in collection.get_items()] == [layer.name]
    # publishing the next version adds an item; republishing the same replaces it
    v2 = publish_layer(
        db,
        dataset="stream-order",
        roi="b1",
        kind="raster",
        algorithm_version=4,
        files=[f],
        workflow="stream-order",
    )
    write_item(root, v2, geometry=SQUARE, bbox=[76, 20, 77, 21])
    write_item(root, v2, geometry=SQUARE, bbox=[76, 20, 77, 21])
    catalog = pystac.Catalog.from_file(str(root / "catalog.json"))
    ids = sorted(i.id for i in catalog.get_child("stream-order").get_items())
    assert ids == [layer.name, v2.name]
