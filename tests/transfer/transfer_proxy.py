"""A small forwarding proxy on 127.0.0.1 for the transfer tests: ``CONNECT`` tunnels (https)
and absolute-form requests (http), recording what it was asked and with which credentials."""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import socketserver
import threading
from urllib.parse import urlsplit


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def _head(self, sock: socket.socket, buffered: bytes) -> tuple[bytes, bytes] | None:
        data = buffered
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    def handle(self) -> None:
        client = self.request
        buffered = b""
        while True:  # one request after another on a keep-alive client connection
            got = self._head(client, buffered)
            if got is None:
                return
            head, buffered = got
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            auth = headers.get("Proxy-Authorization")
            with self.server.lock:
                self.server.seen.append((method, target, auth))
            if self.server.credentials and auth != self.server.expected_auth:
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
                client.sendall(b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
                continue
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host, int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if buffered:
                    upstream.sendall(buffered)
                return self._relay(client, upstream)
            parts = urlsplit(target)  # absolute form: forward in origin form, once
            kept = [f"{k}: {v}" for k, v in headers.items() if k.lower() != "proxy-authorization"]
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close"])
            upstream = socket.create_connection((parts.hostname, parts.port or 80))
            upstream.sendall(request.encode("latin-1") + b"\r\n\r\n")
            with upstream:
                while chunk := upstream.recv(65536):  # the origin closes after its response
                    client.sendall(chunk)

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        with b:
            while True:
                ready, _, _ = select.select([a, b], [], [], 5)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ProxyTestServer:
    """``seen``: (method, target, Proxy-Authorization) of every request it was sent."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.seen = []
        self.server.lock = threading.Lock()
        self.server.credentials = credentials
        if credentials:
            raw = f"{credentials[0]}:{credentials[1]}".encode()
            self.server.expected_auth = "Basic " + base64.b64encode(raw).decode()
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def seen(self) -> list[tuple[str, str, str | None]]:
        return self.server.seen

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def __enter__(self) -> ProxyTestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        with contextlib.suppress(OSError):
            self.server.server_close()
