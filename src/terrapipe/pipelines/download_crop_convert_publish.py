"""``download-crop-convert-publish``: the dataset chain, fanned out over the selected datasets.

```
select (catalog query, safety limit)
  └─ fetch            map_over select: one node per dataset (skips verified downloads)
      └─ crop         map_over fetch: to ``bbox`` (passes the file through if none)
          └─ convert  map_over crop: first matching converter (raster -> COG, vector ->
              │       GeoParquet), outputs stored as artifacts
              └─ publish  map_over convert: to ``publish_folder`` (a folder, or
                          sftp://host/path with credentials from the provider
                          settings), returns URLs
```

Every per-dataset step holds that dataset's lock (Redis when ``TERRAPIPE_REDIS_URL`` is
set, lock files otherwise), so two runs never work on the same dataset's files at once.
``select`` and ``fetch`` always run (the catalog and the disk may have changed); ``crop``,
``convert`` and ``publish`` are cached by their parameters and upstream results.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terrapipe.core.task import Param, Task
from terrapipe.core.workflow import Workflow
from terrapipe.errors import InvalidInput, NoDatasetsFound, SafetyLimitExceeded
from terrapipe.transfer.locks import LockFactory

if TYPE_CHECKING:
    from terrapipe.settings import Settings

WORKFLOW_NAME = "download-crop-convert-publish"
LOCK_TIMEOUT_S = 3600.0


def _criteria(query: str, begin: str, end: str, geometry: str) -> dict[str, Any]:
    try:
        criteria = json.loads(query or "{}")
    except ValueError as exc:
        raise InvalidInput(f"invalid query {query!r}: not JSON ({exc})") from None
    if not isinstance(criteria, dict):
        raise InvalidInput(f"invalid query {query!r}: expected a JSON object")
    for key, value in (("begin", begin), ("end", end), ("geometry", geometry)):
        if value:
            criteria[key] = value
    return criteria


@contextlib.contextmanager
def _dataset_lock(dataset_id: int, settings: Settings) -> Iterator[None]:
    """Hold the dataset's lock (the same one the DownloadManager takes), where the run's
    settings keep locks."""
    from terrapipe.transfer.manager import dataset_lock_key

    locks = LockFactory(redis_url=settings.redis_url, lock_dir=settings.home_dir / "locks")
    try:
        with locks.dataset_lock(dataset_lock_key(str(dataset_id)), LOCK_TIMEOUT_S):
            yield
    finally:
        locks.close()


class SelectDatasets(Task):
    """The ids of the datasets matching the query; refuses more than ``safety_limit``."""

    name = "select"
    version = 1
    params = {
        "query": Param(str, "{}", "catalog lookups as JSON"),
        "begin": Param(str, "", "start of the time window"),
        "end": Param(str, "", "end of the time window"),
        "geometry": Param(str, "", "WKT, GeoJSON or west,south,east,north"),
        "safety_limit": Param(int, 100, "refuse above this many datasets"),
    }

    def needed(self, ctx) -> bool:
        return True  # the catalog changes: always look again

    def run(self, ctx) -> list[int]:
        from terrapipe.transfer.catalog_source import CatalogSource

        p = ctx.params
        criteria = _criteria(p["query"], p["begin"], p["end"], p["geometry"])
        limit = p["safety_limit"]
        with contextlib.nullcontext(ctx.db) as db:  # the run's store, not the default one
            source = CatalogSource(db)
            found = source.select(criteria, limit + 1)
            if len(found) > limit:
                raise SafetyLimitExceeded(
                    f"{source.count(criteria)} datasets match, more than the safety limit of "
                    f"{limit}; nothing was downloaded"
                )
        if not found:
            raise NoDatasetsFound(f"no dataset matches the criteria {criteria!r}")
        return [int(r.key) for r in found]


class FetchDataset(Task):
    """Download one dataset (first working URI) unless a verified download is recorded."""

    name = "fetch"
    version = 1
    params = {
        "download_directory": Param(str, ".", "folder (strftime patterns allowed)"),
        "provider_settings": Param(str, "", "provider settings YAML file"),
    }

    def needed(self, ctx) -> bool:
        return True  # cheap when already downloaded: the recorded file is only verified

    def run(self, ctx) -> dict[str, Any]:
        from terrapipe.catalog.query import get_dataset
        from terrapipe.transfer.catalog_source import CatalogSource, to_record
        from terrapipe.transfer.download import Downloader
        from terrapipe.transfer.manager import already_downloaded, dataset_folder
        from terrapipe.transfer.providers import ProviderRegistry

        dataset_id = int(ctx.item)
        providers = ProviderRegistry.from_file(ctx.params["provider_settings"] or None)
        with _dataset_lock(dataset_id, ctx.settings), contextlib.nullcontext(ctx.db) as db:
            record = to_record(get_dataset(db, dataset_id))
            path = already_downloaded(record)
            if path is None:
                folder = dataset_folder(ctx.params["download_directory"], record)
                with Downloader(providers) as downloader:
                    path = downloader.fetch_first(
                        record.remotes,
                        folder,
                        progress=lambda _name, done, total: ctx.progress(done, total or done),
                    )
                CatalogSource(db).record_download(record, path, save_path=False)
        return {"dataset_id": dataset_id, "path": str(path)}


class CropDataset(Task):
    """Crop the downloaded file to ``bbox`` (EPSG:4326); no bbox passes the file through."""

    name = "crop"
    version = 1
    params = {"bbox": Param(str, "", "west,south,east,north in EPSG:4326; empty: no crop")}

    def run(self, ctx) -> dict[str, Any]:
        from terrapipe.transfer.crop import crop

        item = ctx.item
        bbox = ctx.params["bbox"]
        if not bbox:
            return dict(item)
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError:
            raise InvalidInput(f"invalid bbox {bbox!r}: expected west,south,east,north") from None
        source = Path(item["path"])
        with _dataset_lock(item["dataset_id"], ctx.settings):
            out = crop(source, ctx.artifact_path(source.name), bbox=box)
        return {"dataset_id": item["dataset_id"], "path": out}


class ConvertDataset(Task):
    """Convert with the first matching converter of the default manager."""

    name = "convert"
    version = 1

    def run(self, ctx) -> dict[str, Any]:
        from terrapipe.catalog.query import get_dataset
        from terrapipe.transfer.converters import DefaultConversionManager

        item = ctx.item
        with contextlib.nullcontext(ctx.db) as db:  # the run's store
            dataset = get_dataset(db, int(item["dataset_id"]))
        out_dir = ctx.artifact_path("converted/.keep").parent
        with _dataset_lock(item["dataset_id"], ctx.settings):
            outputs = DefaultConversionManager().convert(dataset, item["path"], out_dir)
        return {"dataset_id": item["dataset_id"], "paths": outputs}


def publish_target(destination: str, url_prefix: str, provider_settings: str | None):
    """A local folder, or ``sftp://host[:port]/path`` with credentials from provider settings."""
    from urllib.parse import urlsplit

    from terrapipe.transfer.ops import LocalPublishTarget, SftpPublishTarget
    from terrapipe.transfer.providers import ProviderRegistry

    if not destination.startswith("sftp://"):
        return LocalPublishTarget(Path(destination), url_prefix)
    provider = ProviderRegistry.from_file(provider_settings or None).for_url(destination)
    parts = urlsplit(destination)
    if not provider.username:
        raise InvalidInput(f"no provider settings with a username for {destination!r}")
    return SftpPublishTarget(
        host=parts.hostname or "",
        port=parts.port or 22,
        root=parts.path or "/",
        url_prefix=url_prefix,
        username=provider.username,
        password=provider.password,
        known_hosts=provider.known_hosts,
        accept_unknown_host_keys=provider.accept_unknown_host_keys,
    )


class PublishDataset(Task):
    """Publish the converted files to ``publish_folder`` (local or sftp://); returns URLs."""

    name = "publish-dataset"  # not the region workflows' publish-layer
    version = 1
    params = {
        "publish_folder": Param(str, help="local folder, or sftp://host[:port]/path"),
        "url_prefix": Param(str, help="URL of publish_folder"),
        "provider_settings": Param(str, "", "provider settings YAML (SFTP credentials)"),
    }

    def needed(self, ctx) -> bool:
        return True  # publication is cheap and the target may have been cleaned

    def run(self, ctx) -> dict[str, Any]:
        from terrapipe.transfer.ops import publish

        item = ctx.item
        key = str(item["dataset_id"])
        destination = ctx.params["publish_folder"].rstrip("/") + "/" + key
        prefix = ctx.params["url_prefix"].rstrip("/") + "/" + key
        target = publish_target(destination, prefix, ctx.params["provider_settings"])
        urls = [publish(Path(path), target) for path in item["paths"]]
        return {"dataset_id": item["dataset_id"], "urls": urls}


def build_workflow() -> Workflow:
    """The workflow, built fresh (no module-level state)."""
    wf = Workflow(
        WORKFLOW_NAME,
        version=1,
        category="transfer",
        description="Download the datasets a catalog query returns, crop, convert, publish.",
    )
    wf.add_node(SelectDatasets)
    wf.add_node(FetchDataset, "select", map_over=True)
    wf.add_node(CropDataset, "fetch", map_over=True)
    wf.add_node(ConvertDataset, "crop", map_over=True)
    wf.add_node(PublishDataset, "convert", name="publish", map_over=True)
    return wf.validate()


workflow = build_workflow()
