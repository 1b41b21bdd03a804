"""The layers table: one row per published layer version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from terrapipe.store.db import Base
from terrapipe.store.types import UTCDateTime


class LayerRecord(Base):
    __tablename__ = "layers"
    __table_args__ = (
        sa.UniqueConstraint("name", name="uq_layers_name"),
        sa.Index("ix_layers_dataset_roi", "dataset", "roi_slug"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(300))
    dataset: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))  # raster | vector | table
    layer_version: Mapped[int] = mapped_column(sa.Integer)
    algorithm_version: Mapped[str] = mapped_column(sa.String(50))
    workflow: Mapped[str] = mapped_column(sa.String(200))
    roi_slug: Mapped[str] = mapped_column(sa.String(200))
    roi: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    files: Mapped[list[str]] = mapped_column(sa.JSON)
    properties: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    stac_item: Mapped[str | None] = mapped_column(sa.Text)
    publication: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    run_id: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
