"""HTTP(S) downloads on :mod:`terrapipe.transfer.http11`: keep-alive pool, reads into a buffer.

Why not httpx here: measured on this project's benchmark, streaming a body through
httpx/httpcore/h11 (a new ``bytes`` per 64 KiB chunk, copied through h11's buffer) peaks
near 250 MB/s, while reading into one reused buffer keeps up with curl; and per small
file, ``http.client``'s header parsing costs more CPU than the transfer. httpx remains in
use for small request/response exchanges (OAuth2 tokens).

Credentials: basic auth or a bearer token from the provider settings (or the URL's user
info, which is stripped from the request line), and the provider's own ``headers`` (API
keys). They go only to the origin (scheme, host, port) of the requested URL: a redirect to
another origin drops every one of them, and a redirect from https to http is refused.
"""

from __future__ import annotations

import base64
import re
import ssl
import threading
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from terrapipe.errors import DownloadError, TransientTransferError
from terrapipe.transfer.attempt import Attempt, Fetcher, credentials, part_offset
from terrapipe.transfer.http11 import Connection, ConnectionPool, Key, Response
from terrapipe.transfer.policy import (
    RETRY_STATUSES,
    Limits,
    TransferOptions,
    parse_retry_after,
)
from terrapipe.transfer.providers import ProviderRegistry, ProviderSettings
from terrapipe.transfer.proxies import ProxyConfig
from terrapipe.transfer.secrets import reveal, scrub_text, scrub_url, strip_userinfo

BUFFER_SIZE = 256 * 1024  # big files read 64 KiB at a time (cache-friendly), small ones at once
LARGE_READ = 64 * 1024
PROGRESS_STEP = 1 << 20
MAX_REDIRECTS = 10
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_NETWORK_ERRORS = (ConnectionError, TimeoutError, ssl.SSLError, OSError)
SMALL_FILE = 4 << 20


def _key(url: str) -> tuple[Key, str]:
    """The connection key (scheme, host, port: the URL's origin) and the request target."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise DownloadError(f"invalid port in URL {scrub_url(url)!r}") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, (parts.hostname or "").lower(), port), target


def _redirect(url: str, location: str) -> str:
    """The absolute URL a redirect points to; refuses a scheme other than http(s) and any
    downgrade from https to http (credentials and data would travel in clear)."""
    new = urljoin(url, location)
    old_scheme, new_scheme = urlsplit(url).scheme.lower(), urlsplit(new).scheme.lower()
    if new_scheme not in ("http", "https"):
        raise DownloadError(f"refusing a redirect to a non-HTTP URL: {scrub_url(new)!r}")
    if old_scheme == "https" and new_scheme == "http":
        raise DownloadError(
            f"refusing a redirect from https to plain http: {scrub_url(new)!r} "
            f"(from {scrub_url(url)!r})"
        )
    return new


class HttpFetcher(Fetcher):
    """One attempt at an HTTP(S) download into a part file, resuming with Range."""

    def __init__(
        self, options: TransferOptions, providers: ProviderRegistry, *, max_connections: int = 16
    ) -> None:
        super().__init__(options)
        self.providers = providers
        self.pool = ConnectionPool(
            connect_timeout_s=options.connect_timeout_s,
            read_timeout_s=options.read_timeout_s,
            max_idle=max_connections,
        )
        self._local = threading.local()
        self.proxies = ProxyConfig()  # HTTPS_PROXY / HTTP_PROXY / NO_PROXY, read once

    def _buffer(self) -> memoryview:
        buf = getattr(self._local, "buffer", None)
        if buf is None:
            buf = self._local.buffer = memoryview(bytearray(BUFFER_SIZE))
        return buf

    def _auth_header(self, url: str, provider: ProviderSettings) -> dict[str, str]:
        if provider.authentication_type == "oauth2":
            token = self.providers.token_source(provider).token()
            return {"Authorization": f"Bearer {token.reveal()}"}
        _, user, password = credentials(url, provider)
        if user or password:
            raw = f"{user or ''}:{reveal(password) or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def attempt(self, job: Attempt) -> int | None:
        provider = job.provider
        bare, _, _ = strip_userinfo(job.url)
        offset = part_offset(job.part)
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        # provider headers and auth: for the requested origin only (dropped on a redirect away)
        secrets = {**provider.headers, **self._auth_header(job.url, provider)}
        try:
            return self._get(bare, headers, secrets, job, offset)
        except _NETWORK_ERRORS as exc:
            if isinstance(exc, DownloadError):
                raise
            message = f"{type(exc).__name__}: {scrub_text(str(exc), provider.secrets)}"
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise DownloadError(message) from None  # retrying cannot help
            if isinstance(exc, TimeoutError):
                message = (
                    f"read timeout: no data from the server for {self.options.read_timeout_s:g} s"
                )
            raise TransientTransferError(message) from None

    def _open(
        self,
        url: str,
        headers: dict[str, str],
        credentials: dict[str, str],
        ca_bundle: str | None = None,
    ) -> tuple[Connection, Response]:
        """Send the request (following redirects); returns the connection and response.

        ``credentials`` (auth and provider headers) are sent to the first URL's origin only.
        """
        origin, _ = _key(url)
        for _ in range(MAX_REDIRECTS + 1):
            key, target = _key(url)
            if credentials and key != origin:
                credentials = {}  # another scheme, host or port: none of the provider's headers
            request_headers = {"Host": urlsplit(url).netloc, **headers, **credentials}
            proxy = self.proxies.for_url(*key)
            conn, reused = self.pool.get(key, ca_bundle=ca_bundle, proxy=proxy)
            try:
                response = conn.request(target, request_headers)
            except (ConnectionError, OSError) as exc:
                conn.close()
                if not reused or isinstance(exc, TimeoutError):
                    raise
                # a stale keep-alive connection: once more, on a fresh one
                conn, _ = self.pool.get(key, ca_bundle=ca_bundle, proxy=proxy)
                try:
                    response = conn.request(target, request_headers)
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                conn.close()
                raise
            if response.status in (301, 302, 303, 307, 308) and response.getheader("location"):
                location = response.getheader("location") or ""
                self._release(conn, response)
                url = _redirect(url, location)
                continue
            return conn, response
        raise DownloadError(f"more than {MAX_REDIRECTS} redirects")

    def _release(self, conn: Connection, response: Response) -> None:
        """Back to the pool when the body was read to the end, closed otherwise."""
        try:
            reusable = response.drain()
        except Exception:
            reusable = False
        if reusable:
            self.pool.put(conn)
        else:
            conn.close()

    def _get(
        self,
        url: str,
        headers: dict[str, str],
        credentials: dict[str, str],
        job: Attempt,
        offset: int,
    ) -> int | None:
        conn, response = self._open(url, headers, credentials, job.provider.ca_bundle)
        keep = False
        try:
            total, offset = self._check(response, job.part, offset, job.provider)
            if total is not None and total == offset and response.status == 416:
                keep = True
                return total
            self._receive(response, job.part, offset, total, job.progress, job.limits)
            keep = True
            return total
        finally:
            if keep:
                self._release(conn, response)
            else:
                conn.close()

    def _check(self, response, part: Path, offset: int, provider) -> tuple[int | None, int]:
        """Status handling: (total size, offset to write at) or an error."""
        status = response.status
        if status == 401 and provider.authentication_type == "oauth2":
            self.providers.token_source(provider).invalidate()
            raise TransientTransferError("HTTP 401 (token refused; fetching a new one)")
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.getheader("retry-after"))
            raise TransientTransferError(f"HTTP {status}", retry_after=retry_after)
        if status == 416 and offset:
            match = re.match(r"bytes \*/(\d+)", response.getheader("Content-Range") or "")
            if match and int(match.group(1)) == offset:
                return offset, offset  # the part file is already complete
            part.unlink(missing_ok=True)
            raise TransientTransferError("HTTP 416 on resume; restarting from zero")
        if status == 206:
            match = _CONTENT_RANGE.match(response.getheader("Content-Range") or "")
            if not match or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise TransientTransferError("unexpected Content-Range; restarting from zero")
            return (None if match.group(3) == "*" else int(match.group(3))), offset
        if status == 200:
            length = response.getheader("Content-Length")
            return (int(length) if length and length.isdigit() else None), 0
        raise DownloadError(f"HTTP {status} {response.reason}".rstrip())

    def _receive(
        self, response, part: Path, offset: int, total: int | None, progress, limits: Limits
    ) -> None:
        limits.check_total(total)
        limits.start(offset)
        cap = limits.cap
        clock = limits.clock
        buf = self._buffer()
        if total is None or total - offset > SMALL_FILE:
            buf = buf[:LARGE_READ]
        done, reported = offset, offset
        if progress:
            progress(done, total)
        with open(part, "ab" if offset else "wb", buffering=0) as f:
            while n := response.readinto(buf):
                view = buf[:n]
                while view:
                    view = view[f.write(view) :]
                done += n
                if cap is not None and done > cap:
                    limits.check_size(done)
                if clock() >= limits.next_check:
                    limits.pace(done)
                if progress and done - reported >= PROGRESS_STEP:
                    progress(done, total)
                    reported = done
        if progress and done != reported:
            progress(done, total)
        if total is not None and done < total:
            raise TransientTransferError(f"connection closed after {done} of {total} bytes")

    def close(self) -> None:
        self.pool.close()
