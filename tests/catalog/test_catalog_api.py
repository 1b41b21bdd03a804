"""The public surface of terrapipe.catalog, pinned; pure helpers without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box

import terrapipe.catalog as catalog
from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.geometry import bbox_boxes, parse_geometry
from terrapipe.catalog.rtree import bulk_rows, rtree_rows
from terrapipe.catalog.timespan import parse_datetime, parse_relative, time_window
from terrapipe.errors import QueryError


def test_public_surface_is_pinned() -> None:
    assert catalog.__all__ == [
        "Dataset",
        "DatasetURI",
        "SaveResult",
        "count",
        "get_dataset",
        "record_download",
        "save_datasets",
        "search",
    ]


def test_to_dict_is_json_and_pure() -> None:
    d = Dataset(
        "x",
        time_start=datetime(2024, 1, 1, tzinfo=UTC),
        footprint=box(170, 0, 190, 1),
        properties={"a": 1},
        uris=(DatasetURI("s3://b/x.tif", size=3),),
    )
    before = repr(d)
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["time_start"] == "2024-01-01T00:00:00+00:00" and doc["uris"][0]["size"] == 3
    assert repr(d) == before


def test_time_parsing() -> None:
    assert parse_datetime("2024-01-31T10:00:00Z") == datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert parse_datetime("2024-01-31T12:00:00+02:00") == datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert parse_relative("12h") == timedelta(hours=12)
    now = datetime(2024, 5, 10, tzinfo=UTC)
    assert time_window(relative="7d", now=now) == (now - timedelta(days=7), now)
    with pytest.raises(QueryError, match="invalid datetime 12"):
        parse_datetime(12)


def test_geometry_inputs_agree() -> None:
    wkt = parse_geometry("POLYGON ((1 2, 3 2, 3 4, 1 4, 1 2))")
    assert parse_geometry("1,2,3,4").equals(wkt)
    assert parse_geometry([1, 2, 3, 4]).equals(wkt)
    assert parse_geometry(
        {"type": "Polygon", "coordinates": [[[1, 2], [3, 2], [3, 4], [1, 4], [1, 2]]]}
    ).equals(wkt)
    assert bbox_boxes((170, 0, -170, 1)) == [(170, 0, 180.0, 1), (-180.0, 0, -170, 1)]


def test_rtree_rows() -> None:
    assert rtree_rows(3, 170, 0, -170, 1) == [(6, 170, 180.0, 0, 1), (7, -180.0, -170, 0, 1)]
    nan = [float("nan")] * 4
    rows = bulk_rows([1, 2, 3, 4], [[10, 10, 11, 11], nan, [-10, -10, -9, -9], [170, 0, -170, 1]])
    assert sorted(map(tuple, rows)) == [
        (2, 10.0, 11.0, 10.0, 11.0),
        (6, -10.0, -9.0, -10.0, -9.0),
        (8, 170.0, 180.0, 0.0, 1.0),
        (9, -180.0, -170.0, 0.0, 1.0),
    ]
    assert all(type(r[0]) is int for r in rows)


def test_bulk_sqlite_times_match_sqlalchemy() -> None:
    """The bulk path formats datetimes exactly as the ORM column does (lookups compare text)."""
    from datetime import timezone

    from sqlalchemy.dialects import sqlite

    from terrapipe.catalog.load.bulk import sqlite_time
    from terrapipe.catalog.models import datasets_table

    bind = datasets_table.c.time_start.type._cached_bind_processor(sqlite.dialect())
    for value in (
        datetime(2020, 1, 1),
        datetime(2020, 1, 1, 5, tzinfo=timezone(timedelta(hours=-3))),
        datetime(999, 5, 6, 7, 8, 9, 123),
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    ):
        assert sqlite_time(value) == bind(value)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.datetimes(),
            st.datetimes(
                min_value=datetime(2, 1, 1),
                max_value=datetime(9998, 12, 31),
                timezones=st.builds(
                    timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))
                ),
            ),
        ),
        max_size=40,
    )
)
def test_vectorised_sqlite_times_match_sqlalchemy(values) -> None:
    """``sqlite_times`` (numpy) writes exactly what the ORM column writes, None for None."""
    from sqlalchemy.dialects import sqlite

    from terrapipe.catalog.load.bulk import sqlite_times
    from terrapipe.catalog.models import datasets_table

    bind = datasets_table.c.time_start.type._cached_bind_processor(sqlite.dialect())
    assert sqlite_times(values) == [bind(v) for v in values]
