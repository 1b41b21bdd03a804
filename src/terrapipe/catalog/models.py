"""Catalog tables: ``datasets`` (one row per scene or file) and ``dataset_uris`` (its files).

The footprint column is one logical column on both backends (see :class:`Footprint`):
WKB in a BLOB on SQLite, indexed by the ``datasets_rtree`` R*Tree on the bbox columns
(kept in sync by triggers, two boxes for antimeridian-crossing bboxes); a PostGIS
``geometry(Geometry, 4326)`` with a GiST index on PostgreSQL. Python always sees WKB bytes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import FunctionElement

from terrapipe.store.db import Base
from terrapipe.store.types import UTCDateTime

HARVEST_STATES = ("ok", "failed")
URI_ROLES = ("data", "metadata", "thumbnail", "overview", "other")
RTREE_TABLE = "datasets_rtree"

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class _GeomFromWKB(FunctionElement):
    """WKB bytes -> the stored footprint (a geometry on PostGIS, the bytes on SQLite)."""

    type = sa.LargeBinary()
    inherit_cache = True


class _GeomAsWKB(FunctionElement):
    """The stored footprint -> WKB bytes."""

    type = sa.LargeBinary()
    inherit_cache = True


@compiles(_GeomFromWKB)
def _from_wkb_default(element: _GeomFromWKB, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_GeomFromWKB, "postgresql")
def _from_wkb_pg(element: _GeomFromWKB, compiler: Any, **kw: Any) -> str:
    return f"ST_GeomFromWKB({compiler.process(element.clauses, **kw)}, 4326)"


@compiles(_GeomAsWKB)
def _as_wkb_default(element: _GeomAsWKB, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_GeomAsWKB, "postgresql")
def _as_wkb_pg(element: _GeomAsWKB, compiler: Any, **kw: Any) -> str:
    return f"ST_AsBinary({compiler.process(element.clauses, **kw)})"


class Footprint(sa.types.UserDefinedType):
    """An EPSG:4326 footprint exchanged as WKB bytes; stored natively on each backend."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BLOB"

    def bind_expression(self, bindvalue: Any) -> Any:
        return _GeomFromWKB(bindvalue)

    def column_expression(self, col: Any) -> Any:
        return _GeomAsWKB(col)


@compiles(Footprint, "postgresql")
def _footprint_pg(element: Footprint, compiler: Any, **kw: Any) -> str:
    return "geometry(Geometry, 4326)"


class DatasetRecord(Base):
    """One cataloged dataset (a scene, a file, a STAC item)."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(sa.String(500), unique=True)
    title: Mapped[str | None] = mapped_column(sa.Text)
    collection: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    platform: Mapped[str | None] = mapped_column(sa.String(100))
    instrument: Mapped[str | None] = mapped_column(sa.String(100))
    provider: Mapped[str | None] = mapped_column(sa.String(200))
    time_start: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    time_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    footprint: Mapped[bytes | None] = mapped_column(Footprint)
    bbox_west: Mapped[float | None] = mapped_column(sa.Float)
    bbox_south: Mapped[float | None] = mapped_column(sa.Float)
    bbox_east: Mapped[float | None] = mapped_column(sa.Float)
    bbox_north: Mapped[float | None] = mapped_column(sa.Float)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    harvest_status: Mapped[str] = mapped_column(sa.String(20), default="ok")
    harvest_error: Mapped[str | None] = mapped_column(sa.Text)
    harvest_source: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    harvested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    uris: Mapped[list[DatasetURIRecord]] = relationship(
        back_populates="dataset",
        cascade="all, delete-orphan",
        order_by="DatasetURIRecord.id",
        passive_deletes=True,
    )


class DatasetURIRecord(Base):
    """One file of a dataset: where it is, what it is, and where it was downloaded to."""

    __tablename__ = "dataset_uris"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    uri: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.String(20), default="data")
    name: Mapped[str | None] = mapped_column(sa.String(200))
    media_type: Mapped[str | None] = mapped_column(sa.String(200))
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    checksum: Mapped[str | None] = mapped_column(sa.String(200))
    local_path: Mapped[str | None] = mapped_column(sa.Text)

    dataset: Mapped[DatasetRecord] = relationship(back_populates="uris")


@sa.event.listens_for(DatasetRecord, "after_insert")
def _index_new_record(_mapper: Any, connection: sa.Connection, target: DatasetRecord) -> None:
    """Put an ORM-inserted dataset's bbox into the SQLite R*Tree (bulk loads do it directly)."""
    from terrapipe.catalog.rtree import INSERT_SQL, rtree_rows

    bbox = (target.bbox_west, target.bbox_south, target.bbox_east, target.bbox_north)
    if connection.dialect.name != "sqlite" or any(v is None for v in bbox):
        return
    cursor = connection.connection.driver_connection.cursor()
    cursor.executemany(INSERT_SQL, rtree_rows(target.id, *bbox))
    cursor.close()


datasets_table: sa.Table = DatasetRecord.__table__  # type: ignore[assignment]
uris_table: sa.Table = DatasetURIRecord.__table__  # type: ignore[assignment]
