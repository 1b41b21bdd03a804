"""One attempt at fetching one file, ftp or sftp URL into a ``.part`` file (resumable).

A fetcher appends to the part file and returns the total size the server announced (or
None). It raises :class:`TransientTransferError` for failures worth retrying (the caller
retries and resumes) and :class:`DownloadError` for the others. Schemes: file,
ftp (resume with REST), sftp (resume with a seek; credentials required); HTTP(S) is in
:mod:`terrapipe.transfer.httpfetch`.
"""

from __future__ import annotations

import contextlib
import ftplib
import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from terrapipe.errors import (
    DownloadError,
    TransientTransferError,
    UnsupportedScheme,
)
from terrapipe.transfer.policy import Limits, TransferOptions
from terrapipe.transfer.providers import ProviderSettings
from terrapipe.transfer.secrets import reveal, scrub_text, scrub_url, strip_userinfo
from terrapipe.transfer.ssh import ssh_client

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]
SCHEMES = ("http", "https", "file", "ftp", "sftp")


class _Sink:
    """Appends chunks to the part file, enforcing the size cap and reporting progress."""

    def __init__(
        self,
        part: Path,
        offset: int,
        total: int | None,
        limits: Limits,
        progress: Progress | None,
    ) -> None:
        limits.check_total(total)
        limits.start(offset)
        self.limits = limits
        self.cap, self.total, self.done, self.progress = limits.cap, total, offset, progress
        self.reported = offset
        self.file = open(part, "ab" if offset else "wb", buffering=0)  # noqa: SIM115
        if progress:
            progress(offset, total)

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)
        self.done += len(chunk)
        if self.cap is not None and self.done > self.cap:
            self.limits.check_size(self.done)
        if self.limits.clock() >= self.limits.next_check:
            self.limits.pace(self.done)
        if self.progress and (self.done - self.reported >= 1 << 20 or self.done == self.total):
            self.reported = self.done
            self.progress(self.done, self.total)

    def close(self) -> None:
        self.file.close()
        if self.progress and self.done != self.reported:
            self.progress(self.done, self.total)


def _offset(part: Path) -> int:
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


class FileFetcher:
    """Local files (``file:///abs/path``), resumed with a seek."""

    def __init__(self, options: TransferOptions) -> None:
        self.options = options

    def fetch(
        self,
        url: str,
        part: Path,
        provider: ProviderSettings,
        progress: Progress | None,
        limits: Limits | None = None,
    ) -> int | None:
        limits = limits or self.options.limits(None)
        source = Path(unquote(urlsplit(url).path))
        try:
            total = source.stat().st_size
            src = open(source, "rb")  # noqa: SIM115
        except OSError as exc:
            raise DownloadError(f"{exc.strerror or exc}: {str(source)!r}") from None
        offset = min(_offset(part), total)
        with src:
            src.seek(offset)
            sink = _Sink(part, offset, total, limits, progress)
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
        self,
        url: str,
        part: Path,
        provider: ProviderSettings,
        progress: Progress | None,
        limits: Limits | None = None,
    ) -> int | None:
        limits = limits or self.options.limits(None)
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
            sink = _Sink(part, offset, total, limits, progress)
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
        self,
        url: str,
        part: Path,
        provider: ProviderSettings,
        progress: Progress | None,
        limits: Limits | None = None,
    ) -> int | None:
        limits = limits or self.options.limits(None)
        import paramiko

        bare, user, password = _credentials(url, provider)
        if not user:
            raise UnsupportedScheme(f"sftp needs credentials: {scrub_url(url)}")
        parts = urlsplit(bare)
        path = unquote(parts.path)
        client = ssh_client(
            provider.known_hosts, accept_unknown_host_keys=provider.accept_unknown_host_keys
        )
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
                sink = _Sink(part, offset, total, limits, progress)
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
        except paramiko.BadHostKeyException as exc:
            raise DownloadError(
                f"SFTP host key of {exc.hostname} does not match its known_hosts entry "
                "(the server changed its key, or another server answers): refused"
            ) from None
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
