"""Layer records: every published output gets one, versioned by its algorithm version.

A new algorithm version (the producing task's ``version``) creates a new layer version;
publishing again with the same algorithm version updates that layer in place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from terrapipe.errors import InvalidInput
from terrapipe.geo.naming import layer_name, roi_slug
from terrapipe.publish.models import LayerRecord
from terrapipe.store.db import Database

KINDS = ("raster", "vector", "table")
layers_t = LayerRecord.__table__


@dataclass
class Layer:
    """A published layer version."""

    name: str
    dataset: str
    kind: str
    layer_version: int
    algorithm_version: str
    workflow: str
    roi_slug: str
    roi: dict[str, Any]
    files: list[str]
    properties: dict[str, Any] = field(default_factory=dict)
    stac_item: str | None = None
    publication: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("created_at", "updated_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out


def _row_to_layer(row: Any) -> Layer:
    data = {k: row[k] for k in Layer.__dataclass_fields__}
    return Layer(**data)


def publish_layer(
    db: Database,
    *,
    dataset: str,
    roi: Any,
    kind: str,
    algorithm_version: str | int,
    files: list[str | Path],
    workflow: str,
    roi_info: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> Layer:
    """Create or update the layer record of ``dataset`` for ``roi``; return it.

    The layer version goes up only when ``algorithm_version`` differs from the newest
    version's; otherwise that version is updated in place (files, properties, time).
    """
    if kind not in KINDS:
        raise InvalidInput(f"layer kind must be one of {', '.join(KINDS)}: {kind!r}")
    if not files:
        raise InvalidInput(f"layer {dataset!r} has no files to publish")
    slug = roi_slug(roi)
    algorithm_version = str(algorithm_version)
    now = dt.datetime.now(dt.UTC)
    paths = [str(Path(f).resolve()) for f in files]
    with db.begin() as conn:
        newest = (
            conn.execute(
                sa.select(layers_t)
                .where(layers_t.c.dataset == dataset, layers_t.c.roi_slug == slug)
                .order_by(layers_t.c.layer_version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        values = {
            "kind": kind,
            "workflow": workflow,
            "roi": roi_info or {"slug": slug},
            "files": paths,
            "properties": properties or {},
            "run_id": run_id,
            "updated_at": now,
        }
        if newest is not None and newest["algorithm_version"] == algorithm_version:
            conn.execute(layers_t.update().where(layers_t.c.id == newest["id"]).values(**values))
            name = newest["name"]
        else:
            version = 1 if newest is None else newest["layer_version"] + 1
            name = layer_name(dataset, slug, version=version)
            conn.execute(
                layers_t.insert().values(
                    name=name,
                    dataset=dataset,
                    layer_version=version,
                    algorithm_version=algorithm_version,
                    roi_slug=slug,
                    publication={},
                    created_at=now,
                    **values,
                )
            )
        row = conn.execute(sa.select(layers_t).where(layers_t.c.name == name)).mappings().one()
    return _row_to_layer(row)


def set_stac_item(db: Database, name: str, href: str) -> None:
    """Remember where the layer's STAC item was written, and mark it published there."""
    with db.begin() as conn:
        row = conn.execute(sa.select(layers_t.c.publication).where(layers_t.c.name == name)).first()
        publication = dict(row[0] or {}) if row else {}
        publication["stac"] = {"status": "published", "href": href}
        conn.execute(
            layers_t.update()
            .where(layers_t.c.name == name)
            .values(stac_item=href, publication=publication)
        )


def list_layers(
    db: Database, *, dataset: str | None = None, workflow: str | None = None, latest: bool = False
) -> list[Layer]:
    """Layers, newest first; ``latest`` keeps only the newest version of each."""
    query = sa.select(layers_t).order_by(layers_t.c.updated_at.desc(), layers_t.c.id.desc())
    if dataset:
        query = query.where(layers_t.c.dataset == dataset)
    if workflow:
        query = query.where(layers_t.c.workflow == workflow)
    with db.begin() as conn:
        layers = [_row_to_layer(r) for r in conn.execute(query).mappings()]
    if latest:
        seen: set[tuple[str, str]] = set()
        out = []
        for layer in sorted(layers, key=lambda la: -la.layer_version):
            if (layer.dataset, layer.roi_slug) not in seen:
                seen.add((layer.dataset, layer.roi_slug))
                out.append(layer)
        layers = out
    return layers


def get_layer(db: Database, name: str) -> Layer | None:
    with db.begin() as conn:
        row = conn.execute(sa.select(layers_t).where(layers_t.c.name == name)).mappings().first()
    return _row_to_layer(row) if row else None
