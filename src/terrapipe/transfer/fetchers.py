"""One attempt at fetching one URL into a ``.part`` file, resuming from its current size.

A fetcher appends to the part file and returns the total size the server announced (or
None). It raises :class:`TransientTransferError` for failures worth retrying (the caller
retries and resumes) and :class:`DownloadError` for the others. Schemes: http(s), file,
ftp (resume with REST), sftp (resume with a seek; credentials required).
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from terrapipe.errors import (
    DownloadError,
    IntegrityError,
    TransientTransferError,
    UnsupportedScheme,
)
from terrapipe.transfer.policy import RETRY_STATUSES, TransferOptions, parse_retry_after
from terrapipe.transfer.providers import ProviderRegistry, ProviderSettings
from terrapipe.transfer.secrets import reveal, scrub_text, scrub_url, strip_userinfo

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
SCHEMES = ("http", "https", "file", "ftp", "sftp")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Sink:
    """Appends chunks to the part file, enforcing the size cap and reporting progress."""

    def __init__(
        self,
        part: Path,
        offset: int,
        total: int | None,
        options: TransferOptions,
        progress: Progress | None,
    ) -> None:
        cap = options.max_file_size
        if cap is not None and total is not None and total > cap:
            raise IntegrityError(f"file of {total} bytes exceeds the size cap of {cap} bytes")
        self.cap, self.total, self.done, self.progress = cap, total, offset, progress
        self.file = open(part, "ab" if offset else "wb", buffering=0)  # noqa: SIM115
        if progress:
            progress(offset, total)

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.done += len(chunk)
        if self.cap is not None and self.done > self.cap:
            raise IntegrityError(f"download exceeds the size cap of {self.cap} bytes")
        if self.progress:
            self.progress(self.done, self.total)

    def close(self) -> None:
        self.file.close()


def _offset(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


class HttpFetcher:
    """HTTP(S) with one shared connection pool, basic or OAuth2 auth, and Range resume."""

    def __init__(
        self, options: TransferOptions, providers: ProviderRegistry, *, max_connections: int = 16
    ) -> None:
        self.options, self.providers = options, providers
        timeout = httpx.Timeout(
            options.read_timeout_s, connect=options.connect_timeout_s, pool=None
        )
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.client = httpx.Client(timeout=timeout, limits=limits, follow_redirects=True)

    def _auth(self, url: str, provider: ProviderSettings) -> tuple[httpx.Auth | None, dict]:
        bare, user, password = strip_userinfo(url)
        if provider.authentication_type == "oauth2":
            token = self.providers.token_source(provider).token()
            return None, {"Authorization": f"Bearer {token.reveal()}"}
        user = provider.username or user
        password = provider.password or password
        if user or password:
            return httpx.BasicAuth(user or "", reveal(password) or ""), {}
        return None, {}

    def fetch(
        self, url: str, part: Path, provider: ProviderSettings, progress: Progress | None
    ) -> int | None:
        bare, _, _ = strip_userinfo(url)
        offset = _offset(part)
        auth, auth_headers = self._auth(url, provider)
        headers = {"Accept-Encoding": "identity", **provider.headers, **auth_headers}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            with self.client.stream("GET", bare, headers=headers, auth=auth) as response:
                return self._receive(response, part, offset, provider, progress)
        except httpx.TransportError as exc:
            raise TransientTransferError(
                f"{type(exc).__name__}: {scrub_text(str(exc), provider.secrets)}"
            ) from None

    def _receive(
        self,
        response: httpx.Response,
        part: Path,
        offset: int,
        provider: ProviderSettings,
        progress: Progress | None,
    ) -> int | None:
        status = response.status_code
        if status == 401 and provider.authentication_type == "oauth2":
            self.providers.token_source(provider).invalidate()
            raise TransientTransferError("HTTP 401 (token refused; fetching a new one)")
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientTransferError(f"HTTP {status}", retry_after=retry_after)
        if status == 416 and offset:
            match = re.match(r"bytes \*/(\d+)", response.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == offset:
                return offset  # the part file is already complete
            part.unlink(missing_ok=True)
            raise TransientTransferError("HTTP 416 on resume; restarting from zero")
        if status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise TransientTransferError("unexpected Content-Range; restarting from zero")
            total = None if match.group(3) == "*" else int(match.group(3))
        elif status == 200:
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise DownloadError(f"HTTP {status} {response.reason_phrase}".rstrip())
        sink = _Sink(part, offset, total, self.options, progress)
        try:
            for chunk in response.iter_raw():  # as received: a cut keeps what came
                sink.write(chunk)
        finally:
            sink.close()
        return total

    def close(self) -> None:
        self.client.close()


class FileFetcher:
    """Local files (``file:///abs/path``), resumed with a seek."""

    def __init__(self, options: TransferOptions) -> None:
        self.options = options

    def fetch(
        self, url: str, part: Path, provider: ProviderSettings, progress: Progress | None
    ) -> int | None:
        source = Path(unquote(urlsplit(url).path))
        try:
            total = source.stat().st_size
            src = open(source, "rb")  # noqa: SIM115
        except OSError as exc:
            raise DownloadError(f"{exc.strerror or exc}: {str(source)!r}") from None
        offset = min(_offset(part), total)
        with src:
            src.seek(offset)
            sink = _Sink(part, offset, total, self.options, progress)
            try:
                while chunk := src.read(self.options.chunk_size):
                    sink.write(chunk)
            finally:
                sink.close()
        return total

    def close(self) -> None:
        pass


def _credentials(url: str, provider: ProviderSettings):
    bare, user, password = strip_userinfo(url)
    return bare, provider.username or user, provider.password or password


class FtpFetcher:
    """FTP with ftplib: binary mode, SIZE when offered, resume with REST."""

    def __init__(self, options: TransferOptions) -> None:
        self.options = options

    def fetch(
        self, url: str, part: Path, provider: ProviderSettings, progress: Progress | None
    ) -> int | None:
        bare, user, password = _credentials(url, provider)
        parts = urlsplit(bare)
        path = unquote(parts.path)
        offset = _offset(part)
        ftp = ftplib.FTP()
        try:
            ftp.connect(parts.hostname or "", parts.port or 21, self.options.connect_timeout_s)
            ftp.login(user or "anonymous", reveal(password) or "anonymous@")
            if ftp.sock is not None:
                ftp.sock.settimeout(self.options.read_timeout_s)
            ftp.voidcmd("TYPE I")
            try:
                total = ftp.size(path)
            except ftplib.error_perm:
                total = None
            if total is not None and offset > total:
                offset = 0
            sink = _Sink(part, offset, total, self.options, progress)
            try:
                ftp.retrbinary(f"RETR {path}", sink.write, self.options.chunk_size, offset or None)
            finally:
                sink.close()
            return total
        except DownloadError:
            raise
        except ftplib.error_perm as exc:
            raise DownloadError(f"FTP {scrub_text(str(exc), (password,))}") from None
        except (ftplib.error_temp, ftplib.error_reply, EOFError, OSError) as exc:
            raise TransientTransferError(
                f"FTP {type(exc).__name__}: {scrub_text(str(exc), (password,))}"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                ftp.close()


class SftpFetcher:
    """SFTP with paramiko (password auth), resumed with a seek; credentials required."""

    def __init__(self, options: TransferOptions) -> None:
        self.options = options

    def fetch(
        self, url: str, part: Path, provider: ProviderSettings, progress: Progress | None
    ) -> int | None:
        import paramiko

        bare, user, password = _credentials(url, provider)
        if not user:
            raise UnsupportedScheme(f"sftp needs credentials: {scrub_url(url)}")
        parts = urlsplit(bare)
        path = unquote(parts.path)
        client = paramiko.SSHClient()
        if provider.known_hosts:
            client.load_host_keys(os.path.expanduser(provider.known_hosts))
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.load_system_host_keys()
            client.set_missing_host_key_policy(paramiko.WarningPolicy())
        try:
            client.connect(
                parts.hostname or "",
                parts.port or 22,
                username=user,
                password=reveal(password),
                timeout=self.options.connect_timeout_s,
                banner_timeout=self.options.connect_timeout_s,
                auth_timeout=self.options.connect_timeout_s,
                look_for_keys=False,
                allow_agent=False,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(self.options.read_timeout_s)
            total = sftp.stat(path).st_size
            offset = _offset(part)
            if total is not None and offset > total:
                offset = 0
            with sftp.open(path, "rb") as remote:
                remote.seek(offset)
                remote.prefetch(total)
                sink = _Sink(part, offset, total, self.options, progress)
                try:
                    while chunk := remote.read(self.options.chunk_size):
                        sink.write(chunk)
                finally:
                    sink.close()
            return total
        except DownloadError:
            raise
        except paramiko.AuthenticationException:
            raise DownloadError("SFTP authentication failed") from None
        except FileNotFoundError:
            raise DownloadError(f"SFTP no such file: {path!r}") from None
        except PermissionError:
            raise DownloadError(f"SFTP permission denied: {path!r}") from None
        except (TimeoutError, paramiko.SSHException, EOFError, OSError) as exc:
            raise TransientTransferError(
                f"SFTP {type(exc).__name__}: {scrub_text(str(exc), (password,))}"
            ) from None
        finally:
            client.close()
