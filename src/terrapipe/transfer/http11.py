"""A small HTTP/1.1 client for GET downloads: keep-alive pool, bodies read into a buffer.

Only what downloading needs: ``GET`` with headers; status, headers and a body delimited by
``Content-Length``, ``chunked`` encoding or the end of the connection; TLS with the
default verified context. Header parsing is a few string splits (``http.client`` spends
more time in its email parser than in the transfer of a 200 KiB file).
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import threading

from terrapipe.errors import DownloadError, TransientTransferError
from terrapipe.transfer.proxies import Proxy

Key = tuple[str, str, int]
MAX_HEADER_LINE = 65536
MAX_HEADERS = 200


class ProtocolError(TransientTransferError):
    """The server's response is not valid HTTP/1.1 (or ended too early)."""


class ReadTimeout(TransientTransferError, TimeoutError):
    """No byte arrived within the read timeout: the server stalled (it did not close)."""


class Response:
    """Status, lower-cased headers, and ``readinto`` for the body."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        reader = conn.reader
        line = reader.readline(MAX_HEADER_LINE)
        if not line:
            raise ConnectionResetError("server closed the connection before responding")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {line[:80]!r}")
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = reader.readline(MAX_HEADER_LINE)
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                conn.raise_if_stalled()
                raise ProtocolError("connection closed inside the headers")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:80]!r}")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        else:
            raise ProtocolError("too many headers")
        self.headers = headers
        connection = headers.get("connection", "").lower()
        self.will_close = "close" in connection or (
            self.version == "HTTP/1.0" and "keep-alive" not in connection
        )
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        length = headers.get("content-length")
        if self._chunked:
            self._left: int | None = None
        elif length is not None and length.strip().isdigit():
            self._left = int(length)
        else:
            self._left = None  # until the connection closes
            self.will_close = True
        self.done = self._left == 0

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def readinto(self, buf: memoryview) -> int:
        """Read body bytes into ``buf``; 0 at the end of the body."""
        if self.done:
            return 0
        reader = self._conn.reader
        if self._chunked:
            return self._read_chunked(buf)
        if self._left is None:
            n = reader.readinto1(buf)
            if not n:
                self._conn.raise_if_stalled()
                self.done = True
            return n or 0
        want = min(len(buf), self._left)
        n = reader.readinto1(buf[:want])
        if not n:
            self._conn.raise_if_stalled()
            raise ProtocolError(f"connection closed with {self._left} body bytes missing")
        self._left -= n
        self.done = self._left == 0
        return n

    def _read_chunked(self, buf: memoryview) -> int:
        reader = self._conn.reader
        if self._chunk_left == 0:
            line = reader.readline(MAX_HEADER_LINE)
            if not line.endswith(b"\n"):
                self._conn.raise_if_stalled()
            size = line.split(b";", 1)[0].strip()
            try:
                self._chunk_left = int(size, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {line[:40]!r}") from None
            if self._chunk_left == 0:
                while reader.readline(MAX_HEADER_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.done = True
                return 0
        n = reader.readinto1(buf[: min(len(buf), self._chunk_left)])
        if not n:
            self._conn.raise_if_stalled()
            raise ProtocolError("connection closed inside a chunk")
        self._chunk_left -= n
        if self._chunk_left == 0:
            reader.readline(MAX_HEADER_LINE)  # CRLF after the chunk
        return n

    def drain(self, limit: int = 65536) -> bool:
        """Read and drop a small rest of the body; True when the connection is reusable."""
        if self.will_close:
            return False
        if self.done:
            return True
        scratch = memoryview(bytearray(8192))
        total = 0
        while not self.done and total <= limit:
            total += self.readinto(scratch)
        return self.done


class Connection:
    """One TCP (or TLS) connection with a buffered reader."""

    def __init__(self, key: Key, sock: socket.socket, read_timeout_s: float = 0.0) -> None:
        self.key, self.sock = key, sock
        self.read_timeout_s = read_timeout_s
        self.reader = sock.makefile("rb", buffering=65536)

    def raise_if_stalled(self) -> None:
        """After a read gave nothing: ReadTimeout when the server is silent but connected.

        A plain socket's kernel timeout makes ``recv`` give up without an error, which
        reads like the end of the stream; a non-blocking peek tells the two apart (a TLS
        socket raises its own timeout instead).
        """
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            raise ReadTimeout(
                f"read timeout: no data from the server for {self.read_timeout_s:g} s"
            ) from None
        except (OSError, ValueError):
            return

    #: for http through a proxy: the absolute-form prefix and the proxy's own headers
    absolute_prefix = ""
    proxy_headers: dict[str, str] = {}

    def request(self, target: str, headers: dict[str, str]) -> Response:
        if self.absolute_prefix:
            target = self.absolute_prefix + target
            headers = {**headers, **self.proxy_headers}
        lines = [f"GET {target} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(payload)
        return Response(self)

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


def _set_timeouts(sock: socket.socket, read_timeout_s: float) -> None:
    """Kernel timeouts on a blocking socket: no poll() before every recv."""
    seconds = int(read_timeout_s)
    timeval = struct.pack("ll", seconds, int((read_timeout_s - seconds) * 1e6))
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def _authority(host: str, port: int, default: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return host if port == default else f"{host}:{port}"


def _connect_tunnel(sock: socket.socket, host: str, port: int, proxy: Proxy) -> None:
    """Ask the proxy for a tunnel to ``host:port`` (``CONNECT``); the proxy's credentials
    go in this request only, never through the tunnel."""
    authority = _authority(host, port, -1)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{k}: {v}" for k, v in proxy.headers().items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head:  # nothing follows the head until we speak TLS
        chunk = sock.recv(4096)
        if not chunk:
            raise TransientTransferError(f"the proxy {proxy.display} closed the connection")
        head += chunk
        if len(head) > MAX_HEADER_LINE:
            raise ProtocolError(f"the proxy {proxy.display} sent an oversized response")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        status = " ".join(parts[1:]) or status_line[:40]
        hint = " (proxy credentials missing or refused)" if parts[1:2] == ["407"] else ""
        raise DownloadError(
            f"the proxy {proxy.display} refused a tunnel to {authority}: {status}{hint}"
        )


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port), shared by threads."""

    def __init__(self, *, connect_timeout_s: float, read_timeout_s: float, max_idle: int = 16):
        self.connect_timeout_s, self.read_timeout_s = connect_timeout_s, read_timeout_s
        self.max_idle = max_idle
        self._idle: dict[Key, list[Connection]] = {}
        self._lock = threading.Lock()
        self._contexts: dict[str | None, ssl.SSLContext] = {}

    def _context(self, ca_bundle: str | None) -> ssl.SSLContext:
        """A verifying TLS context (system CAs, or the given CA bundle file)."""
        with self._lock:
            context = self._contexts.get(ca_bundle)
            if context is None:
                cafile = os.path.expanduser(ca_bundle) if ca_bundle else None
                context = ssl.create_default_context(cafile=cafile)
                self._contexts[ca_bundle] = context
            return context

    def get(
        self, key: Key, *, ca_bundle: str | None = None, proxy: Proxy | None = None
    ) -> tuple[Connection, bool]:
        """An idle connection (reused=True) or a new one (through ``proxy`` when given)."""
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port = key
        address = (proxy.host, proxy.port) if proxy else (host, port)
        try:
            sock = socket.create_connection(address, timeout=self.connect_timeout_s)
        except OSError as exc:
            if proxy is None:
                raise
            raise TransientTransferError(
                f"cannot reach the proxy {proxy.display}: {exc.strerror or exc}"
            ) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy is not None and scheme == "https":
                _connect_tunnel(sock, host, port, proxy)
            if scheme == "https":
                sock = self._context(ca_bundle).wrap_socket(sock, server_hostname=host)
                sock.settimeout(self.read_timeout_s)
            else:
                _set_timeouts(sock, self.read_timeout_s)
        except BaseException:
            sock.close()
            raise
        conn = Connection(key, sock, self.read_timeout_s)
        if proxy is not None and scheme == "http":
            conn.absolute_prefix = f"http://{_authority(host, port, 80)}"
            conn.proxy_headers = proxy.headers()
        return conn, False

    def put(self, conn: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()
