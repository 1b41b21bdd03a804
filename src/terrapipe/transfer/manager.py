"""``DownloadManager``: select datasets by criteria, refuse too many, download the rest.

Selection and recording go through a :class:`DatasetSource` (the terrapipe catalog by
default, see :mod:`terrapipe.transfer.catalog_source`): it finds datasets and their URIs,
and remembers where a dataset was downloaded, so "already downloaded" is a recorded fact
that is verified again, never a guess from a folder's contents.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from terrapipe.errors import (
    DownloadError,
    IntegrityError,
    InvalidInput,
    NoDatasetsFound,
    SafetyLimitExceeded,
)
from terrapipe.transfer.download import (
    Downloader,
    DownloadJob,
    ProgressCallback,
    RemoteFile,
    download_many,
    verify,
)
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.policy import TransferOptions
from terrapipe.transfer.providers import ProviderRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetRecord:
    """What the downloader needs of a dataset: key, name, time, URIs, recorded local path.

    ``problem`` says why the dataset cannot be downloaded as recorded (an unusable
    checksum): it is reported as failed and skipped, the rest of the batch goes on.
    """

    key: str
    name: str
    time_start: datetime | None
    remotes: tuple[RemoteFile, ...]
    local_path: str | None = None
    problem: str | None = None


class DatasetSource(Protocol):
    """Finds datasets by criteria and records downloads (the catalog implements it)."""

    def count(self, criteria: dict[str, Any]) -> int: ...

    def select(self, criteria: dict[str, Any], limit: int) -> list[DatasetRecord]: ...

    def record_download(self, record: DatasetRecord, path: Path, *, save_path: bool) -> None: ...


@dataclass
class DownloadReport:
    """Per dataset: where it was downloaded, skipped (already there), or why it failed."""

    downloaded: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "downloaded": {k: str(v) for k, v in self.downloaded.items()},
            "skipped": {k: str(v) for k, v in self.skipped.items()},
            "failed": dict(self.failed),
        }


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def dataset_lock_key(key: str) -> str:
    """The lock name of a dataset's files (shared by the manager and the workflow tasks)."""
    return f"catalog:{key}"


def dataset_folder(base: str, record: DatasetRecord) -> Path:
    """``base`` with strftime patterns filled from the dataset's time_start, then its folder."""
    if "%" in base:
        if record.time_start is None:
            raise InvalidInput(
                f"download directory {base!r} has time patterns but dataset {record.key!r} "
                "has no time_start"
            )
        base = record.time_start.strftime(base)
    name = _UNSAFE.sub("_", record.name).strip("._") or f"dataset_{record.key}"
    return Path(base) / name


def already_downloaded(record: DatasetRecord) -> Path | None:
    """The recorded local file if it still exists and verifies against a known size/checksum."""
    if not record.local_path:
        return None
    path = Path(record.local_path)
    if not path.is_file():
        return None
    known = next((r for r in record.remotes if r.file_name == path.name), None)
    try:
        if known is not None:
            verify(path, size=known.size, checksum=known.checksum)
    except IntegrityError as exc:
        log.info("recorded download %s does not verify (%s): downloading again", path, exc)
        return None
    return path


class DownloadManager:
    """Download every dataset matching ``criteria`` (refusing more than ``max_downloads``)."""

    def __init__(
        self,
        download_directory: str | Path = ".",
        provider_settings_path: str | Path | None = None,
        max_downloads: int = 100,
        save_path: bool = False,
        *,
        source: DatasetSource | None = None,
        locks: LockFactory | None = None,
        options: TransferOptions | None = None,
        workers: int = 8,
        **criteria: Any,
    ) -> None:
        if not isinstance(max_downloads, int) or max_downloads < 0:
            raise InvalidInput(f"invalid max_downloads {max_downloads!r}: expected an int >= 0")
        self.download_directory = str(download_directory)
        self.providers = ProviderRegistry.from_file(provider_settings_path)
        self.max_downloads = max_downloads
        self.save_path = save_path
        self.criteria = criteria
        self.workers = workers
        self.locks = locks or LockFactory.from_settings()
        self.options = options
        self._source = source
        self._own_source: Any = None

    @property
    def source(self) -> DatasetSource:
        if self._source is None:
            from terrapipe.transfer.catalog_source import CatalogSource

            self._source = self._own_source = CatalogSource.from_settings()
        return self._source

    def close(self) -> None:
        """Close the catalog database if this manager opened it."""
        if self._own_source is not None:
            self._own_source.db.dispose()
            self._own_source = self._source = None

    def __enter__(self) -> DownloadManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def select(self) -> list[DatasetRecord]:
        """The matching datasets; refuses (SafetyLimitExceeded) more than max_downloads."""
        records = self.source.select(self.criteria, self.max_downloads + 1)
        if len(records) > self.max_downloads:
            count = self.source.count(self.criteria)
            raise SafetyLimitExceeded(
                f"{count} datasets match, more than the safety limit of {self.max_downloads}; "
                "nothing was downloaded (narrow the criteria or raise the limit)"
            )
        if not records:
            raise NoDatasetsFound(f"no dataset matches the criteria {self.criteria!r}")
        return records

    def download(
        self, *, progress: ProgressCallback | None = None, raise_on_error: bool = True
    ) -> DownloadReport:
        """Download the selection; skip verified recorded downloads; report every dataset."""
        records = self.select()
        report = DownloadReport()
        jobs: list[DownloadJob] = []
        by_key: dict[str, DatasetRecord] = {}
        for record in records:
            if record.problem is not None:
                log.warning("%s", record.problem)
                report.failed[record.key] = record.problem
                continue
            existing = already_downloaded(record)
            if existing is not None:
                report.skipped[record.key] = existing
                continue
            folder = dataset_folder(self.download_directory, record)
            jobs.append(DownloadJob(record.key, record.remotes, folder))
            by_key[record.key] = record
        with Downloader(
            self.providers,
            locks=self.locks,
            options=self.options,
            max_connections=max(self.workers, 1),
        ) as downloader:
            outcomes = download_many(
                downloader,
                jobs,
                workers=self.workers,
                progress=progress,
                lock=lambda job: self.locks.dataset_lock(dataset_lock_key(job.key)),
            )
        for outcome in outcomes:
            key = outcome.job.key
            if outcome.path is not None:
                report.downloaded[key] = outcome.path
                self.source.record_download(by_key[key], outcome.path, save_path=self.save_path)
            else:
                report.failed[key] = str(outcome.error)
        if report.failed and raise_on_error:
            failures = sorted(report.failed.items())
            raise DownloadError(
                f"{len(failures)} of {len(records)} dataset(s) failed: "
                + "; ".join(f"{k}: {v}" for k, v in failures),
                failures,
            )
        return report
