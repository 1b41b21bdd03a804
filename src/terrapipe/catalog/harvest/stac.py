"""Harvest STAC: a static catalog/collection (pystac) or a STAC API search (pystac-client).

Each item becomes a dataset: ``entry_id`` = item id, ``collection`` = the item's
collection id (unless overridden), asset hrefs (made absolute) become URIs, the item's
own href a ``metadata`` URI. An item that cannot be read or has no geometry is a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import pystac
from shapely.geometry import shape

from terrapipe.catalog.dataset import Dataset, DatasetURI, has_userinfo, without_userinfo
from terrapipe.catalog.geometry import normalize_footprint
from terrapipe.catalog.harvest.report import Failure
from terrapipe.catalog.timespan import parse_datetime
from terrapipe.errors import HarvestError

log = logging.getLogger(__name__)

API_TIMEOUT = 60.0  # seconds per STAC API request
_TIME_KEYS = ("datetime", "start_datetime", "end_datetime")
_LIFTED = (*_TIME_KEYS, "platform", "instruments", "title", "providers")
_ROLES = {"data": "data", "metadata": "metadata", "thumbnail": "thumbnail", "overview": "overview"}


def item_to_dataset(item: pystac.Item, *, collection: str | None = None) -> Dataset:
    """A dataset from a STAC item; raises HarvestError when the item has no usable geometry."""
    if not item.geometry:
        raise HarvestError(f"STAC item {item.id!r} has no geometry")
    try:
        footprint = normalize_footprint(shape(item.geometry))
    except Exception as exc:
        raise HarvestError(f"STAC item {item.id!r} has an invalid geometry: {exc}") from None
    props = dict(item.properties)
    start = _time(props.get("start_datetime")) or item.datetime
    end = _time(props.get("end_datetime")) or item.datetime
    instruments = props.get("instruments") or []
    providers = props.get("providers") or []
    self_href = item.get_self_href()
    return Dataset(
        entry_id=item.id,
        title=props.get("title") or item.id,
        collection=collection or item.collection_id,
        platform=props.get("platform"),
        instrument=",".join(str(i) for i in instruments) or None,
        provider=(
            providers[0].get("name") if providers and isinstance(providers[0], dict) else None
        ),
        time_start=start,
        time_end=end if end != start else None,
        footprint=footprint,
        properties={k: v for k, v in props.items() if k not in _LIFTED},
        uris=tuple(_uris(item, self_href)),
        harvest_source={"kind": "stac_item", "href": _bare(self_href), "collection": collection},
    )


def iter_static(href: str, *, collection: str | None = None) -> Iterator[Dataset | Failure]:
    """Every item under a static STAC catalog, collection, item collection or item file."""
    try:
        obj = pystac.read_file(href)
    except Exception as exc:
        raise HarvestError(f"cannot read STAC file {href!r}: {_one_line(exc)}") from None
    if isinstance(obj, pystac.Item):
        yield _convert(obj, collection)
    elif isinstance(obj, pystac.ItemCollection):
        for item in obj.items:
            yield _convert(item, collection)
    else:
        yield from _walk(obj, collection, seen=set())


def iter_api(
    url: str, *, collection: str | None = None, search: Mapping[str, Any] | None = None
) -> Iterator[Dataset | Failure]:
    """Every item a STAC API search returns; ``search`` is passed to pystac-client as is."""
    import pystac_client

    client = open_api(url)
    if client is None:
        raise HarvestError(f"{url!r} is not a STAC API with item search")
    try:
        results = client.search(**dict(search or {}))
        for item in results.items():
            yield _convert(item, collection, api=url)
    except (pystac_client.exceptions.APIError, TypeError, ValueError) as exc:
        raise HarvestError(f"STAC API search on {url!r} failed: {_one_line(exc)}") from None


def open_api(url: str) -> Any:
    """A pystac-client Client when ``url`` is a STAC API with item search, else None."""
    import warnings

    import pystac_client
    from pystac_client.conformance import ConformanceClasses

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = pystac_client.Client.open(url, timeout=API_TIMEOUT)
            return client if client.conforms_to(ConformanceClasses.ITEM_SEARCH) else None
    except Exception:  # not a STAC API (a static catalog, or not STAC at all)
        return None


def read_item(href: str, *, collection: str | None = None) -> Dataset | Failure:
    """One item re-read from its href (used to retry failed items)."""
    try:
        item = pystac.Item.from_file(href)
    except Exception as exc:
        bare = without_userinfo(href)
        return Failure(
            entry_id=bare,
            error=f"cannot read STAC item {bare!r}: {_one_line(exc)}",
            source={"kind": "stac_item", "href": bare, "collection": collection},
        )
    return _convert(item, collection)


def _walk(
    catalog: pystac.Catalog, collection: str | None, *, seen: set[str]
) -> Iterator[Dataset | Failure]:
    for link in catalog.get_links(pystac.RelType.ITEM):
        href = link.get_absolute_href() or link.href
        if href in seen:
            continue
        seen.add(href)
        yield read_item(href, collection=collection)
    for link in catalog.get_links(pystac.RelType.CHILD):
        href = link.get_absolute_href() or link.href
        if href in seen:
            continue
        seen.add(href)
        try:
            child = pystac.read_file(href)
        except Exception as exc:
            bare = without_userinfo(href)
            yield Failure(
                entry_id=bare,
                error=f"cannot read STAC catalog {bare!r}: {_one_line(exc)}",
                source={"kind": "stac_catalog", "href": bare, "collection": collection},
            )
            continue
        if isinstance(child, pystac.Catalog):
            yield from _walk(child, collection, seen=seen)


def _convert(
    item: pystac.Item, collection: str | None, *, api: str | None = None
) -> Dataset | Failure:
    try:
        return item_to_dataset(item, collection=collection)
    except HarvestError as exc:
        source = {
            "kind": "stac_item",
            "href": _bare(item.get_self_href()),
            "collection": collection,
        }
        if api:
            source.update(api=api, id=item.id, item_collection=item.collection_id)
        return Failure(
            entry_id=item.id,
            error=str(exc),
            source=source,
            title=item.properties.get("title") or item.id,
            collection=collection or item.collection_id,
        )


def _uris(item: pystac.Item, self_href: str | None) -> Iterator[DatasetURI]:
    hrefs = set()
    for key, asset in item.assets.items():
        href = asset.get_absolute_href() or asset.href
        if has_userinfo(href):
            _warn_userinfo(item.id, key, href)
        hrefs.add(href)
        roles = asset.roles or []
        role = next((_ROLES[r] for r in roles if r in _ROLES), roles[0] if roles else "data")
        size = asset.extra_fields.get("file:size")
        yield DatasetURI(
            uri=href,
            role=str(role)[:20],
            name=key,
            media_type=asset.media_type,
            size=int(size) if isinstance(size, int | float) else None,
            checksum=asset.extra_fields.get("file:checksum"),
        )
    if self_href and self_href not in hrefs:
        yield DatasetURI(
            uri=self_href, role="metadata", name="stac-item", media_type="application/geo+json"
        )


def _bare(href: str | None) -> str | None:
    return without_userinfo(href) if href else href


def _warn_userinfo(item_id: str, asset: str, href: str) -> None:
    """Say that a credential in an href was dropped, naming the host, never the secret."""
    host = without_userinfo(href).split("://", 1)[-1].split("/", 1)[0]
    log.warning(
        "STAC item %r, asset %r: the href carried user info (a credential); it is stored "
        "without it. Give the credentials for %s in the transfer provider settings.",
        item_id,
        asset,
        host,
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_datetime(value, name="STAC datetime")
    except Exception:
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
