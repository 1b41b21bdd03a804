"""Light, detached dataset objects: what search returns and what harvesters produce.

They carry no database session; :meth:`Dataset.to_dict` is pure and JSON-ready
(footprint as GeoJSON, datetimes as ISO 8601 strings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from terrapipe.catalog.geometry import Bbox, footprint_bbox


def has_userinfo(uri: str) -> bool:
    """Whether ``uri`` carries user info (``scheme://user[:password]@host/...``)."""
    if "@" not in uri or "://" not in uri:
        return False
    try:
        return "@" in urlsplit(uri).netloc
    except ValueError:
        return False


def without_userinfo(uri: str) -> str:
    """``uri`` without its user info: ``https://user:pass@host/x`` -> ``https://host/x``.

    Both the user and the password go: a user part alone is often a token
    (``https://TOKEN@host``). Credentials belong in the transfer provider settings.
    """
    if not has_userinfo(uri):
        return uri
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class DatasetURI:
    """One file of a dataset; ``local_path`` is set once it has been downloaded.

    A URI never keeps user info: it is removed on construction, so no write path can
    store a password in the catalog (see :func:`without_userinfo`).
    """

    uri: str
    role: str = "data"
    name: str | None = None
    media_type: str | None = None
    size: int | None = None
    checksum: str | None = None
    local_path: str | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.uri, str) and "@" in self.uri:
            object.__setattr__(self, "uri", without_userinfo(self.uri))

    def to_dict(self) -> dict[str, Any]:
        """The URI as a JSON-ready mapping."""
        return {
            "id": self.id,
            "uri": self.uri,
            "role": self.role,
            "name": self.name,
            "media_type": self.media_type,
            "size": self.size,
            "checksum": self.checksum,
            "local_path": self.local_path,
        }


# What names a dataset and when it is: the first columns read and shown.
IDENTITY_FIELDS = (
    "id",
    "entry_id",
    "title",
    "collection",
    "platform",
    "instrument",
    "provider",
    "time_start",
    "time_end",
)
# The fields a person reads first about a dataset (`catalog show`), in that order.
SUMMARY_FIELDS = (*IDENTITY_FIELDS, "bbox", "harvest_status", "harvest_error")


@dataclass(frozen=True, slots=True)
class Dataset:
    """A cataloged dataset with its URIs; ``id`` is None until it is stored."""

    entry_id: str
    title: str | None = None
    collection: str | None = None
    platform: str | None = None
    instrument: str | None = None
    provider: str | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    footprint: BaseGeometry | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    uris: tuple[DatasetURI, ...] = ()
    id: int | None = None
    harvest_status: str = "ok"
    harvest_error: str | None = None
    harvest_source: dict[str, Any] | None = None

    @property
    def bbox(self) -> Bbox | None:
        """(west, south, east, north); ``west > east`` when crossing the antimeridian."""
        return footprint_bbox(self.footprint) if self.footprint is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The dataset as a JSON-ready mapping (footprint as a GeoJSON geometry)."""
        return {
            "id": self.id,
            "entry_id": self.entry_id,
            "title": self.title,
            "collection": self.collection,
            "platform": self.platform,
            "instrument": self.instrument,
            "provider": self.provider,
            "time_start": self.time_start.isoformat() if self.time_start else None,
            "time_end": self.time_end.isoformat() if self.time_end else None,
            "bbox": list(self.bbox) if self.bbox else None,
            "footprint": mapping(self.footprint) if self.footprint is not None else None,
            "properties": dict(self.properties),
            "harvest_status": self.harvest_status,
            "harvest_error": self.harvest_error,
            "harvest_source": self.harvest_source,
            "uris": [u.to_dict() for u in self.uris],
        }


def footprint_from_wkb(wkb: bytes | None) -> BaseGeometry | None:
    """A shapely geometry from stored WKB (None stays None)."""
    return shapely.from_wkb(wkb) if wkb is not None else None
