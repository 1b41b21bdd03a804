"""Dates and time windows for catalog search: parse datetimes, relative spans, windows.

Every datetime is made timezone-aware in UTC; a naive value is read as UTC. A date
without a time means the start of that day for ``begin`` and the end of it for ``end``,
so ``--end 2024-01-31`` includes the whole of January 31st.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from terrapipe.errors import QueryError

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def to_utc(value: datetime) -> datetime:
    """The datetime in UTC (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_datetime(value: Any, *, name: str = "datetime", end_of_day: bool = False) -> datetime:
    """A UTC datetime from a datetime, a date or an ISO 8601 string (``Z`` allowed)."""
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, date):
        return _from_date(value, end_of_day)
    if not isinstance(value, str):
        raise QueryError(f"invalid {name} {value!r}: expected an ISO 8601 date or datetime")
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            return _from_date(date.fromisoformat(text), end_of_day)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        raise QueryError(
            f"invalid {name} {value!r}: expected an ISO 8601 date or datetime "
            "such as 2024-01-31 or 2024-01-31T12:00:00Z"
        ) from None


def _from_date(day: date, end_of_day: bool) -> datetime:
    clock = time.max if end_of_day else time.min
    return datetime.combine(day, clock, tzinfo=UTC)


def parse_relative(value: str) -> timedelta:
    """A span like ``7d``, ``12h``, ``30m``, ``2w`` or ``90s`` as a timedelta."""
    match = _RELATIVE.match(value) if isinstance(value, str) else None
    if not match:
        raise QueryError(
            f"invalid relative time {value!r}: expected a number and a unit s, m, h, d or w "
            "(e.g. 7d, 12h)"
        )
    amount = float(match.group(1))
    if amount <= 0:
        raise QueryError(f"invalid relative time {value!r}: must be positive")
    return timedelta(**{_UNITS[match.group(2).lower()]: amount})


def time_window(
    begin: Any = None, end: Any = None, relative: str | None = None, *, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """(begin, end) in UTC from explicit bounds or a relative span ending now."""
    if relative is not None:
        if begin is not None or end is not None:
            raise QueryError("give either relative or begin/end, not both")
        stop = to_utc(now) if now else datetime.now(UTC)
        return stop - parse_relative(relative), stop
    start = parse_datetime(begin, name="begin") if begin is not None else None
    stop = parse_datetime(end, name="end", end_of_day=True) if end is not None else None
    if start and stop and start > stop:
        raise QueryError(f"invalid time window: begin {begin!r} is after end {end!r}")
    return start, stop
