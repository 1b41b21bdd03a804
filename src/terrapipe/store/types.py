"""Column types shared by every table.

:class:`UTCDateTime` is the one datetime column type: aware UTC datetimes in, aware UTC
datetimes out, on both backends (SQLite keeps naive UTC text, SQLAlchemy's format;
PostgreSQL a ``timestamptz``). No reader has to restore the zone SQLite drops.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UTCDateTime(sa.TypeDecorator):
    """A timezone-aware UTC datetime on both backends (naive UTC text on SQLite)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
