"""STAC harvest: a static catalog written by pystac, and a STAC API on 127.0.0.1 (both DBs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
import pytest
from shapely.geometry import box, mapping

from terrapipe.catalog.harvest import harvest, retry_failed
from terrapipe.catalog.query import count, get_dataset, search
from terrapipe.errors import HarvestError


def _item(
    item_id: str, day: int, geom: Any, *, collection: str | None = None, **props: Any
) -> pystac.Item:
    item = pystac.Item(
        id=item_id,
        geometry=mapping(geom) if geom is not None else None,
        bbox=list(geom.bounds) if geom is not None else None,
        datetime=datetime(2024, 3, day, 10, tzinfo=UTC),
        properties={"platform": "sentinel-2a", "instruments": ["msi"], **props},
        collection=collection,
    )
    item.add_asset(
        "B04",
        pystac.Asset(
            href=f"./{item_id}_B04.tif",
            media_type=pystac.MediaType.COG,
            roles=["data"],
            extra_fields={"file:size": 1234, "file:checksum": "1220abcd"},
        ),
    )
    item.add_asset(
        "thumbnail", pystac.Asset(href=f"https://example.test/{item_id}.png", roles=["thumbnail"])
    )
    return item


@pytest.fixture
def static_catalog(tmp_path: Path) -> Path:
    """catalog.json -> collection "s2-l2a" (two items) and a sub-catalog with one loose item."""
    catalog = pystac.Catalog(id="root", description="test catalog")
    extent = pystac.Extent(
        pystac.SpatialExtent([[0, 0, 20, 20]]),
        pystac.TemporalExtent([[datetime(2024, 3, 1, tzinfo=UTC), None]]),
    )
    coll = pystac.Collection(id="s2-l2a", description="Sentinel-2 L2A", extent=extent)
    coll.add_item(_item("S2A_one", 1, box(0, 0, 1, 1), **{"eo:cloud_cover": 12.5}))
    coll.add_item(_item("S2A_two", 2, box(5, 5, 6, 6), **{"eo:cloud_cover": 80}))
    catalog.add_child(coll)
    sub = pystac.Catalog(id="misc", description="loose items")
    sub.add_item(_item("crossing", 3, None))
    catalog.add_child(sub)
    root = tmp_path / "stac"
    catalog.normalize_hrefs(str(root))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    # Give the loose item an antimeridian-crossing geometry written by hand (GeoJSON rule).
    path = root / "misc" / "crossing" / "crossing.json"
    doc = json.loads(path.read_text())
    doc["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[175, -5], [180, -5], [180, 5], [175, 5], [175, -5]]],
            [[[-180, -5], [-175, -5], [-175, 5], [-180, 5], [-180, -5]]],
        ],
    }
    doc["bbox"] = [175, -5, -175, 5]
    path.write_text(json.dumps(doc))
    return root / "catalog.json"


def test_static_catalog_harvest(db, static_catalog: Path) -> None:
    report = harvest(db, static_catalog)
    assert (report.kind, report.added, report.failed) == ("stac", 3, 0)
    one = get_dataset(db, "S2A_one")
    assert (one.collection, one.platform, one.instrument) == ("s2-l2a", "sentinel-2a", "msi")
    assert one.time_start == datetime(2024, 3, 1, 10, tzinfo=UTC) and one.time_end is None
    assert one.properties == {"eo:cloud_cover": 12.5}
    roles = {u.name: u for u in one.uris}
    data = roles["B04"]
    assert data.uri == (static_catalog.parent / "s2-l2a" / "S2A_one" / "S2A_one_B04.tif").as_posix()
    assert (data.role, data.size, data.checksum) == ("data", 1234, "1220abcd")
    assert roles["thumbnail"].role == "thumbnail"
    assert roles["stac-item"].role == "metadata"
    crossing = get_dataset(db, "crossing")
    assert crossing.collection is None and crossing.bbox == (175, -5, -175, 5)
    assert [d.entry_id for d in search(db, geometry="179,-1,-179,1")] == ["crossing"]
    assert [d.entry_id for d in search(db, {"properties__eo:cloud_cover__lt": 20})] == ["S2A_one"]

    again = harvest(db, static_catalog, collection="renamed")
    assert (again.added, again.updated) == (0, 3)
    assert {d.collection for d in search(db)} == {"renamed"}


def test_item_without_geometry_fails_alone(db, static_catalog: Path) -> None:
    path = static_catalog.parent / "s2-l2a" / "S2A_two" / "S2A_two.json"
    doc = json.loads(path.read_text())
    saved_geometry = doc["geometry"], doc["bbox"]
    doc["geometry"], doc["bbox"] = None, None
    path.write_text(json.dumps(doc))
    report = harvest(db, static_catalog)
    assert (report.added, report.failed) == (2, 1)
    assert report.failures[0].error == "STAC item 'S2A_two' has no geometry"
    assert count(db) == 2
    failed = get_dataset(db, "S2A_two")
    assert failed.harvest_status == "failed" and failed.footprint is None

    doc["geometry"], doc["bbox"] = saved_geometry
    path.write_text(json.dumps(doc))
    fixed = retry_failed(db)
    assert (fixed.updated, fixed.failed) == (1, 0)
    assert get_dataset(db, "S2A_two").harvest_status == "ok" and count(db) == 3


def test_broken_item_file_is_reported(db, static_catalog: Path) -> None:
    (static_catalog.parent / "s2-l2a" / "S2A_one" / "S2A_one.json").write_text("{not json")
    report = harvest(db, static_catalog)
    assert (report.added, report.failed) == (2, 1)
    assert "cannot read STAC item" in report.failures[0].error


def test_unreadable_stac_file(db, tmp_path: Path) -> None:
    bad = tmp_path / "catalog.json"
    bad.write_text("[]")
    with pytest.raises(HarvestError, match="cannot read STAC file"):
        harvest(db, bad)


def _api_items() -> list[dict[str, Any]]:
    items = []
    for i in range(5):
        item = _item(f"api-{i}", i + 1, box(i, 0, i + 1, 1), collection="landsat-c2")
        item.assets["B04"].href = f"https://data.example.test/api-{i}_B04.tif"
        items.append(item.to_dict(include_self_link=False, transform_hrefs=False))
    other = _item("other-0", 9, box(50, 50, 51, 51), collection="other")
    items.append(other.to_dict(include_self_link=False, transform_hrefs=False))
    nogeom = _item("api-nogeom", 10, None, collection="landsat-c2")
    items.append(nogeom.to_dict(include_self_link=False, transform_hrefs=False))
    return items


def test_stac_api_harvest_with_search_params(db, stac_api) -> None:
    stac_api.items = _api_items()
    report = harvest(db, stac_api.base + "/", search={"collections": ["landsat-c2"], "limit": 2})
    assert (report.kind, report.added, report.failed) == ("stac-api", 5, 1)
    assert stac_api.requests[0]["collections"] == ["landsat-c2"]
    assert len(stac_api.requests) >= 3  # paged: 6 matching items, 2 per page
    assert [d.entry_id for d in search(db)] == [f"api-{i}" for i in range(5)]
    first = get_dataset(db, "api-0")
    assert first.collection == "landsat-c2"
    assert first.uris[0].uri == "https://data.example.test/api-0_B04.tif"
    assert first.uris[-1].uri == f"{stac_api.base}/collections/landsat-c2/items/api-0"

    # The failed item is retried from its self link; still no geometry.
    again = retry_failed(db)
    assert (again.failed, again.updated) == (1, 0)
    assert "no geometry" in again.failures[0].error

    same = harvest(db, stac_api.base, search={"collections": ["landsat-c2"]})
    assert (same.added, same.updated) == (0, 5)


def test_search_params_only_for_apis(db, static_catalog: Path) -> None:
    with pytest.raises(HarvestError, match="STAC API only"):
        harvest(db, static_catalog, search={"collections": ["x"]})


def test_static_catalog_over_http(db, static_catalog: Path, monkeypatch) -> None:
    """A static catalog served over HTTP is read as a catalog, not mistaken for an API."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(static_catalog.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/catalog.json"
        report = harvest(db, url)
    finally:
        server.shutdown()
        server.server_close()
    assert (report.kind, report.added, report.failed) == ("stac", 3, 0)
    one = get_dataset(db, "S2A_one")
    assert one.uris[0].uri.endswith("/s2-l2a/S2A_one/S2A_one_B04.tif")
    assert one.uris[0].uri.startswith("http://127.0.0.1:")
