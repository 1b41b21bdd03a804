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
from terrapipe.transfer.attempt import Attempt, Fetcher, Progress, credentials, part_offset
from terrapipe.transfer.policy import Limits
from terrapipe.transfer.secrets import reveal, scrub_text, scrub_url
from terrapipe.transfer.ssh import ssh_client

log = logging.getLogger(__name__)

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

    def pump(self, read: Callable[[int], bytes], chunk_size: int) -> None:
        """Write what ``read(chunk_size)`` returns until it returns nothing, then close."""
        try:
            while chunk := read(chunk_size):
                self.write(chunk)
        finally:
            self.close()


def _resume_offset(part: Path, total: int | None) -> int:
    """Where to resume: the part file's size, or 0 when it is longer than the file."""
    offset = part_offset(part)
    return 0 if total is not None and offset > total else offset


class FileFetcher(Fetcher):
    """Local files (``file:///abs/path``), resumed with a seek."""

    def attempt(self, job: Attempt) -> int | None:
        source = Path(unquote(urlsplit(job.url).path))
        try:
            total = source.stat().st_size
            src = open(source, "rb")  # noqa: SIM115
        except OSError as exc:
            raise DownloadError(f"{exc.strerror or exc}: {str(source)!r}") from None
        offset = min(part_offset(job.part), total)
        with src:
            src.seek(offset)
            _Sink(job.part, offset, total, job.limits, job.progress).pump(
                src.read, self.options.chunk_size
            )
        return total


class FtpFetcher(Fetcher):
    """FTP with ftplib: binary mode, SIZE when offered, resume with REST."""

    def attempt(self, job: Attempt) -> int | None:
        bare, user, password = credentials(job.url, job.provider)
        parts = urlsplit(bare)
        path = unquote(parts.path)
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
            offset = _resume_offset(job.part, total)
            sink = _Sink(job.part, offset, total, job.limits, job.progress)
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


class SftpFetcher(Fetcher):
    """SFTP with paramiko (password auth), resumed with a seek; credentials required."""

    def attempt(self, job: Attempt) -> int | None:
        import paramiko

        provider = job.provider
        bare, user, password = credentials(job.url, provider)
        if not user:
            raise UnsupportedScheme(f"sftp needs credentials: {scrub_url(job.url)}")
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
            offset = _resume_offset(job.part, total)
            with sftp.open(path, "rb") as remote:
                remote.seek(offset)
                remote.prefetch(total)
                sink = _Sink(job.part, offset, total, job.limits, job.progress)
                sink.pump(remote.read, self.options.chunk_size)
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
