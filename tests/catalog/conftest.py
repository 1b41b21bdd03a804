"""Catalog test helpers: generated rasters and a tiny STAC API served on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin


def write_raster(
    path: Path,
    *,
    crs: str,
    origin: tuple[float, float],
    size: tuple[int, int] = (60, 40),
    res: float = 100.0,
    tags: dict[str, str] | None = None,
) -> Path:
    """A small single-band GeoTIFF with its top-left corner at ``origin``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="uint8",
        crs=crs,
        transform=from_origin(origin[0], origin[1], res, res),
        nodata=0,
    ) as dst:
        dst.write(np.full((1, height, width), 7, dtype="uint8"))
        if tags:
            dst.update_tags(**tags)
    return path


CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


class StacApi:
    """State of the test STAC API: its items and every search request it received."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.base = ""
        self.page_size = 2


def _make_handler(api: StacApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, doc: Any, status: int = 200) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            url = urlparse(self.path)
            if url.path in ("", "/"):
                return self._send(_landing(api.base))
            if url.path == "/conformance":
                return self._send({"conformsTo": CONFORMANCE})
            if url.path == "/search":
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                params: dict[str, Any] = dict(q)
                for key in ("collections", "ids"):
                    if key in q:
                        params[key] = q[key].split(",")
                return self._search(params)
            parts = url.path.strip("/").split("/")
            if len(parts) == 4 and parts[0] == "collections" and parts[2] == "items":
                for item in api.items:
                    if item["id"] == parts[3] and item.get("collection") == parts[1]:
                        return self._send(_with_links(item, api.base))
            return self._send({"code": "NotFound"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/search":
                return self._send({"code": "NotFound"}, 404)
            length = int(self.headers.get("Content-Length") or 0)
            params = json.loads(self.rfile.read(length) or b"{}")
            return self._search(params)

        def _search(self, params: dict[str, Any]) -> None:
            api.requests.append(params)
            found = [
                i
                for i in api.items
                if (not params.get("collections") or i.get("collection") in params["collections"])
                and (not params.get("ids") or i["id"] in params["ids"])
            ]
            token = int(params.get("token") or 0)
            page = found[token : token + api.page_size]
            links = []
            if token + api.page_size < len(found):
                links.append(
                    {
                        "rel": "next",
                        "href": f"{api.base}/search",
                        "method": "POST",
                        "body": {"token": token + api.page_size},
                        "merge": True,
                    }
                )
            features = [_with_links(i, api.base) for i in page]
            self._send({"type": "FeatureCollection", "features": features, "links": links})

    return Handler


def _landing(base: str) -> dict[str, Any]:
    return {
        "type": "Catalog",
        "id": "test-api",
        "stac_version": "1.0.0",
        "description": "A tiny STAC API for the catalog tests",
        "conformsTo": CONFORMANCE,
        "links": [
            {"rel": "self", "href": f"{base}/", "type": "application/json"},
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
            {"rel": "conformance", "href": f"{base}/conformance"},
            {"rel": "search", "href": f"{base}/search", "method": "GET"},
            {"rel": "search", "href": f"{base}/search", "method": "POST"},
        ],
    }


def _with_links(item: dict[str, Any], base: str) -> dict[str, Any]:
    doc = dict(item)
    self_href = f"{base}/collections/{item.get('collection')}/items/{item['id']}"
    doc["links"] = [{"rel": "self", "href": self_href, "type": "application/geo+json"}]
    return doc


@pytest.fixture
def stac_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[StacApi]:
    """A STAC API (landing, conformance, /search GET+POST with paging) on 127.0.0.1."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    api = StacApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(api))
    api.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def make_raster():
    """The :func:`write_raster` helper, as a fixture (test modules here are not a package)."""
    return write_raster
