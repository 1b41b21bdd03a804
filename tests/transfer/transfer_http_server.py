"""A real threaded HTTP/1.1 server for the transfer tests, with auth, OAuth2, Range and faults.

Paths:
- ``/pub/NAME``       public files
- ``/private/NAME``   basic auth (``user``/``password`` of the server)
- ``/oauth/NAME``     bearer token from ``POST /token`` (client credentials)
- ``/slow/NAME``      public, sent slowly (concurrency tests)
Faults are queued per file name and consumed one per request: ``cut`` (half the body, then
the connection is dropped), ``503``, ``429`` (Retry-After: 1), ``badlen`` (Content-Length
larger than the body, then close), ``stall`` (half the body, then 1 s of silence).
Hostile bodies: ``/endless/chunked`` and ``/endless/close`` stream zeros until the client
goes away (chunked, or delimited by the end of the connection); ``/drip/NAME`` announces
the file's length and sends one byte every ``drip_delay`` seconds.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class ServerState:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self.user, self.password = "alice", "s3cr3t-Pa55"
        self.client_id, self.client_secret = "tp-client", "cl13nt-S3cret"
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, range)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.slow_chunk_delay = 0.05
        self.redirect_base: str | None = None
        self.authorizations: list[str | None] = []
        self.headers: list[dict[str, str]] = []  # every GET's headers, names lower-cased
        self.drip_delay = 0.2
        self.endless_sent = 0  # bytes the endless responses got out before the client left

    def fault(self, name: str) -> str | None:
        with self.lock:
            queue = self.faults.get(name)
            return queue.popleft() if queue else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    @property
    def state(self) -> ServerState:
        return self.server.state

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if self.path != "/token":
            return self._send(404)
        with self.state.lock:
            self.state.token_requests += 1
        time.sleep(0.2)  # widen the window in which concurrent downloads could all ask
        ok = form.get("client_id") == [self.state.client_id] and form.get("client_secret") == [
            self.state.client_secret
        ]
        if not ok:
            return self._send(401, b'{"error": "invalid_client"}')
        token = uuid.uuid4().hex
        with self.state.lock:
            self.state.tokens.add(token)
        body = json.dumps({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})
        self._send(200, body.encode(), {"Content-Type": "application/json"})

    def do_GET(self) -> None:
        state = self.state
        rng = self.headers.get("Range")
        with state.lock:
            state.requests.append(("GET", self.path, rng))
            state.authorizations.append(self.headers.get("Authorization"))
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        self._counted = True
        try:
            self._get(rng)
        finally:
            self._done()

    def _done(self) -> None:
        """Leave the in-flight count (before the last bytes go out: sound for the client)."""
        if self._counted:
            self._counted = False
            with self.state.lock:
                self.state.in_flight -= 1

    def _authorised(self, area: str) -> bool:
        auth = self.headers.get("Authorization", "")
        if area == "private":
            expected = base64.b64encode(f"{self.state.user}:{self.state.password}".encode())
            return auth == "Basic " + expected.decode()
        if area == "oauth":
            return auth.startswith("Bearer ") and auth[7:] in self.state.tokens
        return True

    def _get(self, rng: str | None) -> None:
        redirect = re.fullmatch(r"/redirect/(\w+)/([^/?]+)", self.path)
        if redirect:  # /redirect/AREA/NAME -> /AREA/NAME, on this host or on ``other_base``
            area, name = redirect.groups()
            base = self.state.redirect_base or ""
            return self._send(302, headers={"Location": f"{base}/{area}/{name}"})
        endless = re.fullmatch(r"/endless/(chunked|close)/[^/?]+", self.path)
        if endless:
            return self._endless(endless.group(1) == "chunked")
        drip = re.fullmatch(r"/drip/([^/?]+)", self.path)
        if drip:
            data = self.state.files.get(drip.group(1), b"")
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(self.state.drip_delay)
            except OSError:
                pass
            self.close_connection = True
            return
        chunked = re.fullmatch(r"/chunked/([^/?]+)", self.path)
        if chunked:
            data = self.state.files.get(chunked.group(1), b"")
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(data), 7000):
                piece = data[i : i + 7000]
                self.wfile.write(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\nX-Trailer: 1\r\n\r\n")
            return
        match = re.fullmatch(r"/(pub|private|oauth|slow)/([^/?]+)", self.path)
        if not match:
            return self._send(404)
        area, name = match.groups()
        if not self._authorised(area):
            return self._send(401, headers={"WWW-Authenticate": 'Basic realm="tp"'})
        data = self.state.files.get(name)
        if data is None:
            return self._send(404)
        fault = self.state.fault(name)
        if fault == "503":
            return self._send(503, b"busy")
        if fault == "429":
            return self._send(429, b"slow down", {"Retry-After": "1"})
        start = 0
        status = 200
        headers = {"Accept-Ranges": "bytes"}
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1)) if m else 0
            if start >= len(data):
                return self._send(416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        length = len(body) + (1000 if fault == "badlen" else 0)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if fault == "stall":  # half the body, then silence longer than the client's timeout
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(1.0)
            self.close_connection = True
            return
        if fault in ("cut", "badlen"):
            self.wfile.write(body[: len(body) // 2] if fault == "cut" else body)
            self.wfile.flush()
            self.close_connection = True
            return
        if area == "slow":
            step = max(1, len(body) // 5)
            for i in range(0, len(body), step):
                if i + step >= len(body):
                    self._done()  # the client cannot have it all before this point
                else:
                    time.sleep(self.state.slow_chunk_delay)
                self.wfile.write(body[i : i + step])
                self.wfile.flush()
            return
        self.wfile.write(body)

    def _endless(self, chunked: bool) -> None:
        self.send_response(200)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        block = bytes(65536)
        piece = f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block
        try:
            while True:
                self.wfile.write(piece)
                with self.state.lock:
                    self.state.endless_sent += len(block)
        except OSError:
            pass
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState


class HttpTestServer:
    """Start on a free 127.0.0.1 port in a thread; ``url(area, name)`` builds URLs."""

    def __init__(self) -> None:
        self.state = ServerState()
        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.state = self.state
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    scheme = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, area: str, name: str) -> str:
        return f"{self.base}/{area}/{name}"

    def __enter__(self) -> HttpTestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
