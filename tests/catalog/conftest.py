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


# -- directory listings: a range-capable static HTTP server and an FTP server -----------


class ServedBytes:
    """What a listing server sent: file body bytes per path, and the requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.file_bytes: dict[str, int] = {}
        self.requests: list[tuple[str, str, str | None]] = []

    def add(self, path: str, n: int) -> None:
        with self.lock:
            self.file_bytes[path] = self.file_bytes.get(path, 0) + n

    @property
    def total(self) -> int:
        return sum(self.file_bytes.values())


def _range_handler(root: Path, served: ServedBytes) -> type:
    """http.server's folder listing plus single ``Range: bytes=a-b`` requests on files."""
    import os
    import re
    from http.server import SimpleHTTPRequestHandler

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            rng = self.headers.get("Range")
            served.requests.append(("GET", self.path, rng))
            local = self.translate_path(self.path)
            if rng and os.path.isfile(local):
                return self._range(local, rng)
            return super().do_GET()

        def do_HEAD(self) -> None:  # noqa: N802
            served.requests.append(("HEAD", self.path, None))
            return super().do_HEAD()

        def _range(self, local: str, rng: str) -> None:
            size = os.path.getsize(local)
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m or int(m[1]) >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            start = int(m[1])
            end = min(int(m[2]) if m[2] else size - 1, size - 1)
            with open(local, "rb") as f:
                f.seek(start)
                body = f.read(end - start + 1)
            self.send_response(206)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            served.add(self.path, len(body))

        def copyfile(self, source: Any, outputfile: Any) -> None:
            data = source.read()
            outputfile.write(data)
            if os.path.isfile(self.translate_path(self.path)):
                served.add(self.path, len(data))

    return Handler


@pytest.fixture
def listing_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A static HTTP server (http.server listing + Range) over ``tmp_path/www``."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    served = ServedBytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _range_handler(root, served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"root": root, "base": f"http://127.0.0.1:{server.server_address[1]}", "served": served}
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def listing_ftp(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """pyftpdlib over ``tmp_path/ftp`` (anonymous read), counting the data bytes it sent."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    root = tmp_path / "ftp"
    root.mkdir()
    served = ServedBytes()

    class CountingDTP(DTPHandler):
        # Loopback lets the kernel buffer megabytes ahead of the reader, which a real
        # network does not: a 64 KiB send buffer makes "sent" mean "the client asked for".
        def __init__(self, sock: Any, cmd_channel: Any) -> None:
            import socket

            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            super().__init__(sock, cmd_channel)

        def close(self) -> None:
            if not self._closed and self.cmd == "RETR" and self.file_obj is not None:
                served.add(self.file_obj.name, self.get_transmitted_bytes())
            super().close()

    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(root), perm="elr")
    handler = type(
        "Handler",
        (FTPHandler,),
        {"authorizer": authorizer, "banner": "tp", "dtp_handler": CountingDTP},
    )
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    port = server.socket.getsockname()[1]
    yield {"root": root, "base": f"ftp://127.0.0.1:{port}", "served": served}
    server.close_all()
    thread.join(timeout=5)


NGINX_CONF = """
worker_processes 1;
error_log {prefix}/error.log;
pid {prefix}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    log_format bytes '$request_method $uri $status $body_bytes_sent "$http_range"';
    access_log {prefix}/access.log bytes;
    client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp; uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ autoindex on; }}
    }}
}}
"""


@pytest.fixture
def listing_nginx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """nginx with ``autoindex on`` over ``tmp_path/nginx-www``; its access log counts bytes."""
    import shutil
    import socket
    import subprocess
    import time

    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe is None:
        pytest.skip("nginx is not installed (scripts/ensure_services.sh installs it)")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    root, prefix = tmp_path / "nginx-www", tmp_path / "nginx"
    root.mkdir()
    (prefix / "tmp").mkdir(parents=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, root=root))
    proc = subprocess.Popen(
        [exe, "-p", str(prefix), "-c", str(conf), "-g", "daemon off; user root;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"nginx did not start: {proc.stderr.read().decode()}")
            time.sleep(0.05)

    def access_log() -> list[list[str]]:
        text = (prefix / "access.log").read_text() if (prefix / "access.log").exists() else ""
        return [line.split(" ", 4) for line in text.splitlines()]

    yield {"root": root, "base": f"http://127.0.0.1:{port}", "log": access_log}
    proc.terminate()
    proc.wait(timeout=10)
