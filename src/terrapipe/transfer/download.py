"""Downloading files: one URI to a folder, a dataset's URIs in turn, many datasets at once.

A file is written to ``NAME.part`` and renamed to ``NAME`` only once complete and verified
(size, and checksum when known). Transient failures (connection reset, timeouts, 5xx, 429
with Retry-After) are retried with exponential backoff, each retry resuming from the part
file (HTTP Range, FTP REST, SFTP/file seek).

Partial files: when a URI finally fails, its part file is deleted before the next URI is
tried, so a failed download leaves nothing behind. Only an *interruption* (Ctrl-C, a
cancelled task, a killed process) leaves ``NAME.part`` in place; the next download of the
same file resumes from it, and the final size/checksum check guards the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from terrapipe.errors import (
    DownloadError,
    IntegrityError,
    InvalidInput,
    TransientTransferError,
    UnsupportedScheme,
)
from terrapipe.transfer.checksums import DIGEST_SIZES, InvalidChecksum, normalise_checksum
from terrapipe.transfer.fetchers import SCHEMES, FileFetcher, FtpFetcher, SftpFetcher
from terrapipe.transfer.httpfetch import HttpFetcher
from terrapipe.transfer.locks import LockFactory, hold
from terrapipe.transfer.policy import TransferOptions
from terrapipe.transfer.providers import ProviderRegistry
from terrapipe.transfer.secrets import scrub_text, scrub_url

log = logging.getLogger(__name__)

#: ``progress(file_name, bytes_done, bytes_total_or_None)``
ProgressCallback = Callable[[str, int, int | None], None]
HASHES = tuple(DIGEST_SIZES)


@dataclass(frozen=True)
class RemoteFile:
    """One URI of a dataset, with the size and checksum when known.

    The checksum may be ``ALGO:HEX`` or a STAC multihash; it is kept as ``"algo:hex"``.
    """

    uri: str
    size: int | None = None
    checksum: str | None = None

    def __post_init__(self) -> None:
        scheme = urlsplit(self.uri).scheme.lower()
        if scheme not in SCHEMES:
            raise UnsupportedScheme(
                f"unsupported URI scheme {scheme!r} in {scrub_url(self.uri)!r}: "
                f"expected one of {', '.join(SCHEMES)}"
            )
        if self.checksum is not None:
            try:
                checksum = normalise_checksum(self.checksum)
            except InvalidChecksum as exc:
                raise InvalidChecksum(f"{exc} (of {scrub_url(self.uri)!r})") from None
            object.__setattr__(self, "checksum", checksum)

    @property
    def scheme(self) -> str:
        return urlsplit(self.uri).scheme.lower()

    @property
    def file_name(self) -> str:
        """The name the file has in its URI (last path segment)."""
        return file_name_of(self.uri)


def file_name_of(uri: str) -> str:
    """The last path segment of ``uri``, checked to be a plain file name."""
    name = unquote(urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise InvalidInput(f"no usable file name in URI {scrub_url(uri)!r}")
    return name


def verify(path: Path, *, size: int | None = None, checksum: str | None = None) -> None:
    """Raise IntegrityError unless ``path`` has the given size and checksum."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise IntegrityError(f"size mismatch: expected {size} bytes, got {actual}")
    if checksum:
        algo, _, expected = normalise_checksum(checksum).partition(":")
        digest = file_digest(path, algo.lower())
        if digest.lower() != expected.lower():
            raise IntegrityError(f"{algo} mismatch: expected {expected}, got {digest}")


def file_digest(path: Path, algo: str) -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algo).hexdigest()


class Downloader:
    """Fetches URIs to folders with providers' credentials, slots, retries and verification."""

    def __init__(
        self,
        providers: ProviderRegistry | None = None,
        *,
        locks: LockFactory | None = None,
        options: TransferOptions | None = None,
        max_connections: int = 16,
    ) -> None:
        self.providers = providers or ProviderRegistry()
        self.locks = locks or LockFactory.from_settings()
        self.options = options or TransferOptions.from_settings()
        self._http = HttpFetcher(self.options, self.providers, max_connections=max_connections)
        self._fetchers = {
            "http": self._http,
            "https": self._http,
            "file": FileFetcher(self.options),
            "ftp": FtpFetcher(self.options),
            "sftp": SftpFetcher(self.options),
        }
        self._sleep = time.sleep
        self._folders: set[Path] = set()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _slot(self, uri: str):
        provider = self.providers.for_url(uri)
        if provider.max_parallel_downloads:
            sem = self.locks.provider_semaphore(provider.prefix, provider.max_parallel_downloads)
            return hold(sem)
        return _NoSlot()

    def fetch(
        self,
        remote: RemoteFile | str,
        folder: str | Path,
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Download one URI into ``folder``; returns the verified file's path."""
        remote = RemoteFile(remote) if isinstance(remote, str) else remote
        folder = Path(folder)
        name = remote.file_name
        target = folder / name
        part = folder / f"{name}.part"
        provider = self.providers.for_url(remote.uri)
        fetcher = self._fetchers[remote.scheme]
        report = (lambda done, total: progress(name, done, total)) if progress else None
        try:
            total = self._attempts(remote, folder, part, provider, fetcher, report)
            expected = remote.size if remote.size is not None else total
            if expected is not None or remote.checksum:
                verify(part, size=expected, checksum=remote.checksum)
        except DownloadError:
            # a final failure (not an interruption): nothing partial is kept
            part.unlink(missing_ok=True)
            raise
        os.replace(part, target)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("downloaded %s to %s", scrub_url(remote.uri), target)
        return target

    def _attempts(self, remote: RemoteFile, folder: Path, part: Path, provider, fetcher, report):
        """Fetch into ``part`` with retries (each resuming); the total size announced."""
        policy = self.options.retry
        limits = self.options.limits(remote.size)  # one size cap and deadline for all attempts
        for attempt in range(policy.attempts):
            try:
                if folder not in self._folders:  # one mkdir per folder, not per file
                    folder.mkdir(parents=True, exist_ok=True)
                    self._folders.add(folder)
                with self._slot(remote.uri):
                    return fetcher.fetch(remote.uri, part, provider, report, limits)
            except TransientTransferError as exc:
                self._folders.discard(folder)  # it may have been removed meanwhile
                if attempt + 1 >= policy.attempts:
                    raise TransientTransferError(
                        f"{exc} (after {policy.attempts} attempts)"
                    ) from None
                delay = policy.delay(attempt, exc.retry_after)
                log.info("retrying %s in %.2f s after: %s", scrub_url(remote.uri), delay, exc)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch_first(
        self,
        remotes: Sequence[RemoteFile | str],
        folder: str | Path,
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Try each URI in turn; the first success wins, all failing raises one DownloadError."""
        if not remotes:
            raise InvalidInput("no URI to download")
        failures: list[tuple[str, str]] = []
        for remote in remotes:
            uri = remote if isinstance(remote, str) else remote.uri
            try:
                remote = RemoteFile(remote) if isinstance(remote, str) else remote
                return self.fetch(remote, folder, progress=progress)
            except (DownloadError, InvalidInput) as exc:
                reason = scrub_text(str(exc), self.providers.for_url(uri).secrets)
                failures.append((scrub_url(uri), reason))
                log.warning("download of %s failed: %s", scrub_url(uri), reason)
                if isinstance(remote, RemoteFile):
                    _discard_part(Path(folder), remote)
        listing = "; ".join(f"{uri}: {why}" for uri, why in failures)
        raise DownloadError(f"all {len(failures)} URI(s) failed: {listing}", failures)


class _NoSlot:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _discard_part(folder: Path, remote: RemoteFile) -> None:
    with contextlib.suppress(InvalidInput, OSError):
        (folder / f"{remote.file_name}.part").unlink(missing_ok=True)


@dataclass(frozen=True)
class DownloadJob:
    """One file to get: its alternative URIs (tried in order) and the folder to put it in."""

    key: str
    remotes: tuple[RemoteFile, ...]
    folder: Path


@dataclass
class DownloadOutcome:
    """What happened to one job: the path, or the error."""

    job: DownloadJob
    path: Path | None = None
    error: Exception | None = None


def download_many(
    downloader: Downloader,
    jobs: Iterable[DownloadJob],
    *,
    workers: int = 8,
    progress: ProgressCallback | None = None,
    lock: Callable[[DownloadJob], AbstractContextManager[Any]] | None = None,
) -> list[DownloadOutcome]:
    """Run jobs on a thread pool (providers' slots still apply); one outcome per job.

    ``lock(job)``, when given, is held around each job (e.g. the dataset's lock).
    """
    jobs = list(jobs)
    if workers < 1:
        raise InvalidInput(f"invalid workers {workers!r}: expected >= 1")

    def run(job: DownloadJob) -> DownloadOutcome:
        if lock is not None:
            with lock(job):
                return fetch(job)
        return fetch(job)

    def fetch(job: DownloadJob) -> DownloadOutcome:
        try:
            return DownloadOutcome(
                job, downloader.fetch_first(job.remotes, job.folder, progress=progress)
            )
        except (DownloadError, InvalidInput) as exc:
            return DownloadOutcome(job, error=exc)

    if workers == 1 or len(jobs) <= 1:
        return [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(run, jobs))


class ProgressTotals:
    """Thread-safe per-file byte counts, summed for an overall figure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: dict[str, tuple[int, int | None]] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        with self._lock:
            self.files[name] = (done, total)

    @property
    def done(self) -> int:
        with self._lock:
            return sum(d for d, _ in self.files.values())
