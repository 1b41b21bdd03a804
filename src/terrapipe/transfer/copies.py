"""Copy the already downloaded files of the catalog datasets matching some criteria.

The select-and-copy loop behind ``terrapipe copy``: select datasets in the catalog (at
most :data:`MAX_DATASETS`), take each one's first recorded local file, keep those with
the wanted extension, and :func:`~terrapipe.transfer.ops.copy` them (link, ``.flag`` file
with the dataset's metadata, TTL cleanup). Datasets never downloaded are reported, not
copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terrapipe.errors import NoDatasetsFound

__all__ = ["MAX_DATASETS", "CopyReport", "copy_datasets", "flag_metadata"]

MAX_DATASETS = 100_000
"""Datasets one copy selects at most: the catalog's largest page (``catalog.query``'s
``MAX_LIMIT``)."""


@dataclass
class CopyReport:
    """What :func:`copy_datasets` did: entry id -> copied path, and ids not downloaded."""

    copied: dict[str, str] = field(default_factory=dict)
    not_downloaded: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"copied": dict(self.copied), "not_downloaded": list(self.not_downloaded)}


def flag_metadata(ds: Any) -> dict[str, Any]:
    """The dataset fields written into a copy's ``.flag`` file."""
    return {
        "entry_id": ds.entry_id,
        "collection": ds.collection,
        "time_start": ds.time_start.isoformat() if ds.time_start else None,
        "time_end": ds.time_end.isoformat() if ds.time_end else None,
        "bbox": list(ds.bbox) if ds.bbox else None,
    }


def copy_datasets(
    db: Any,
    criteria: dict[str, Any],
    destination: str | Path,
    *,
    link: bool = False,
    file_type: str | None = None,
    flag_file: bool = False,
    time_to_live: float | None = None,
) -> CopyReport:
    """Copy (or link) the downloaded file of every dataset matching ``criteria``.

    ``file_type`` keeps only files with that extension (``nc`` or ``.nc``). No matching
    dataset at all is a :class:`~terrapipe.errors.NoDatasetsFound` naming the criteria.
    """
    from terrapipe.transfer.catalog_source import CatalogSource
    from terrapipe.transfer.ops import copy

    suffix = "." + file_type.lower().lstrip(".") if file_type else None
    datasets = CatalogSource(db).datasets(criteria, MAX_DATASETS)
    if not datasets:
        raise NoDatasetsFound(f"no dataset matches the criteria {criteria!r}")
    report = CopyReport()
    for ds in datasets:
        local = next((u.local_path for u in ds.uris if u.local_path), None)
        if not local or not Path(local).exists():
            report.not_downloaded.append(ds.entry_id)
            continue
        if suffix and not local.lower().endswith(suffix):
            continue
        target = copy(
            local,
            destination,
            link=link,
            flag_file=flag_file,
            metadata=flag_metadata(ds),
            time_to_live=time_to_live,
        )
        report.copied[ds.entry_id] = str(target)
    return report
