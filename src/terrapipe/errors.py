"""The terrapipe exception tree.

    TerrapipeError
    ├── InvalidInput (ValueError)         bad input: CLI exit 2, HTTP 4xx; a node failing
    │   │                                 on it makes `terrapipe run` exit 2 as well
    │   ├── ParameterError                unknown / missing / wrongly typed run parameter
    │   ├── WorkflowDefinitionError       duplicate node, unknown upstream, cycle
    │   ├── UnstorableOutput              a task returned something we cannot persist
    │   ├── GeoInputError                 RoiError (AdminNameNotFound, RoiOutsideData),
    │   │                                 RasterError (GridMismatch), VectorError
    │   ├── QueryError, HarvestError      catalog criteria / harvest sources
    │   └── SafetyLimitExceeded, UnsupportedScheme, ProviderSettingsError, UnsafeArchive,
    │       UrlInputError                 a URL file input cannot be fetched
    ├── NotFound (LookupError)            WorkflowNotFound, RunNotFound, DatasetNotFound,
    │                                     NoDatasetsFound, NoConverter
    ├── TaskError (RuntimeError)          a task raised; TaskTimeout (TimeoutError)
    ├── Cancelled                         the run or node was cancelled
    ├── StoreError (OSError)              the database or artifact store failed
    ├── DownloadError (OSError)           TransientTransferError, IntegrityError
    ├── PublishError, LockUnavailable (OSError); LockTimeout (TimeoutError)

Every subclass also inherits the fitting builtin, so callers may catch either (pinned by
tests/test_public_api.py). The CLI maps these to exit codes (``cli/main.py``) and the HTTP
layer to statuses, each in one table; domain code never knows about either.
"""

from __future__ import annotations


class TerrapipeError(Exception):
    """Root of every error terrapipe raises on purpose."""


class InvalidInput(TerrapipeError, ValueError):
    """The caller gave a value terrapipe cannot use; the message names it."""


class ParameterError(InvalidInput):
    """A run parameter is unknown, missing or of the wrong type."""


class WorkflowDefinitionError(InvalidInput):
    """A workflow graph is malformed (duplicate node, unknown upstream, cycle)."""


class UnstorableOutput(InvalidInput):
    """A task returned a value that cannot be stored as JSON or an artifact."""


class NotFound(TerrapipeError, LookupError):
    """A named thing does not exist."""


class WorkflowNotFound(NotFound):
    """No workflow of that name (and version) is registered."""


class RunNotFound(NotFound):
    """No run with that id is in the run store."""


class TaskError(TerrapipeError, RuntimeError):
    """A task raised an exception while running."""


class TaskTimeout(TaskError, TimeoutError):
    """A task ran longer than its timeout."""


class Cancelled(TerrapipeError):
    """The run or node was cancelled."""


class StoreError(TerrapipeError, OSError):
    """The run store or artifact store could not complete an operation."""


# --- geo (terrapipe.geo, terrapipe.sample, terrapipe.pipelines, terrapipe.publish) ---


class GeoInputError(InvalidInput):
    """A geospatial input (file, geometry, grid) cannot be used; the message names it."""


class RoiError(GeoInputError):
    """A region of interest cannot be parsed, is empty, or misses the data."""


class AdminNameNotFound(RoiError, LookupError):
    """An admin path names a state/district/block not in the boundary layer."""


class RoiOutsideData(RoiError):
    """The region of interest does not intersect the dataset it is applied to."""


class RasterError(GeoInputError):
    """A raster file is corrupt, not a raster, has no CRS, or cannot be processed."""


class GridMismatch(RasterError):
    """Rasters that must share a grid (e.g. red and NIR bands) do not."""


class VectorError(GeoInputError):
    """A vector file or GeoDataFrame cannot be read or used as asked."""


# --- catalog (terrapipe.catalog) ---


class DatasetNotFound(NotFound):
    """No dataset with that id or entry_id is in the catalog."""


class QueryError(InvalidInput):
    """Catalog search criteria, a time window or a search geometry cannot be used."""


class HarvestError(InvalidInput):
    """A harvest source cannot be read, or some of its items failed (they are kept)."""


# --- transfer (terrapipe.transfer) ---


class DownloadError(TerrapipeError, OSError):
    """Every URI of a dataset failed; ``failures`` lists ``(uri, reason)`` with URIs scrubbed."""

    def __init__(self, message: str, failures: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.failures = list(failures or [])


class TransientTransferError(DownloadError):
    """A transfer failed in a way worth retrying (connection reset, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IntegrityError(DownloadError):
    """A downloaded file has the wrong size or checksum, or exceeds the size cap."""


class SafetyLimitExceeded(InvalidInput):
    """More datasets match than the safety limit (``max_downloads``) allows."""


class NoDatasetsFound(NotFound):
    """No dataset matches the download or copy criteria."""


class UnsupportedScheme(InvalidInput):
    """A URI scheme terrapipe cannot transfer (or sftp without credentials)."""


class ProviderSettingsError(InvalidInput):
    """The provider settings file is malformed or refers to an unset variable."""


class UrlInputError(InvalidInput):
    """A URL file input cannot be fetched: its server answered something other than the
    file, sent more than the size limit, or could not be reached; the message names the
    input and the URL (credentials masked)."""


class UnsafeArchive(InvalidInput):
    """An archive has members that would escape the target folder or exceed the size limit."""


class NoConverter(NotFound):
    """No registered converter accepts this dataset."""


class LockTimeout(TerrapipeError, TimeoutError):
    """A download slot or dataset lock could not be acquired in time."""


class PublishError(TerrapipeError, OSError):
    """A file could not be published to its target."""


class LockUnavailable(TerrapipeError, OSError):
    """The lock service (Redis at TERRAPIPE_REDIS_URL) cannot be reached."""
