"""Files in and out: downloads, provider settings, locks, converters and file operations.

Import the submodules for the details; the names most scripts need are here. Nothing heavy
(GDAL, the catalog, the database) is imported until it is used.
"""

from __future__ import annotations

from terrapipe.transfer.converters import (
    ConversionManager,
    Converter,
    DefaultConversionManager,
    ParameterSelector,
)
from terrapipe.transfer.download import Downloader, DownloadJob, RemoteFile, download_many
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.manager import DownloadManager, DownloadReport
from terrapipe.transfer.ops import (
    LocalPublishTarget,
    SftpPublishTarget,
    archive,
    copy,
    crop,
    publish,
    remove_downloaded,
    unarchive,
)
from terrapipe.transfer.policy import RetryPolicy, TransferOptions
from terrapipe.transfer.providers import ProviderRegistry, ProviderSettings
from terrapipe.transfer.secrets import Secret

__all__ = [
    "ConversionManager",
    "Converter",
    "DefaultConversionManager",
    "DownloadJob",
    "DownloadManager",
    "DownloadReport",
    "Downloader",
    "LocalPublishTarget",
    "LockFactory",
    "ParameterSelector",
    "ProviderRegistry",
    "ProviderSettings",
    "RemoteFile",
    "RetryPolicy",
    "Secret",
    "SftpPublishTarget",
    "TransferOptions",
    "archive",
    "copy",
    "crop",
    "download_many",
    "publish",
    "remove_downloaded",
    "unarchive",
]
