"""The numpy binary COPY encoder: byte for byte what psycopg's row formatter sends, and what
PostgreSQL (with PostGIS) loads from it."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import psycopg
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import adapters
from psycopg._copy_base import BinaryFormatter
from psycopg.adapt import Transformer
from psycopg.pq import Format

from terrapipe.catalog.load import pgcopy
from terrapipe.catalog.load.pgcopy import (
    HEADER,
    TRAILER,
    Field,
    constant,
    encode_chunks,
    encode_rows,
    float8,
    int4,
    int8,
    raw,
    text,
    timestamptz,
)


def psycopg_stream(types: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> bytes:
    """The whole binary COPY stream psycopg's formatter makes of the rows (what
    ``Copy.write_row`` sends), with the dumpers chosen by type as ``Copy.set_types`` does."""
    tx = Transformer()
    tx.set_dumper_types([adapters.types[t].oid for t in types], Format.BINARY)
    formatter = BinaryFormatter(tx)
    out = bytearray()
    for row in rows:
        out += formatter.write_row(row)
    out += formatter.end()
    return bytes(out)


def ours(fields: Sequence[Field]) -> bytes:
    return HEADER + encode_rows(fields) + TRAILER


def as_utc(value: datetime | None) -> datetime | None:
    """What the encoder means by a naive datetime (psycopg only takes aware ones)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values)


INT4 = st.integers(-(2**31), 2**31 - 1)
INT8 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]
)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
FIXED_ZONES = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
ZONES = st.one_of(st.none(), st.just(UTC), FIXED_ZONES, st.timezones())
DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)
)


def datetime_columns(n: int) -> st.SearchStrategy[list[datetime | None]]:
    """Columns of one kind of datetimes (naive, UTC, one zone) or of any mix of them."""
    one_zone = ZONES.flatmap(
        lambda zone: st.lists(
            nullable(DATETIMES.map(lambda d: d.replace(tzinfo=zone))), min_size=n, max_size=n
        )
    )
    mixed = st.lists(
        nullable(
            st.datetimes(
                min_value=datetime(1, 1, 1),
                max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
                timezones=ZONES,
            )
        ),
        min_size=n,
        max_size=n,
    )
    return one_zone | mixed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rows_are_what_psycopg_sends(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 25), label="rows")

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return data.draw(st.lists(nullable(values), min_size=n, max_size=n))

    ids = column(INT4)
    sizes = column(INT8)
    floats = column(FLOATS)
    names = column(TEXT)
    blobs = column(st.binary(max_size=300))
    times = data.draw(datetime_columns(n), label="times")
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    array = np.array(data.draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=np.float64)
    fields = [
        int4(ids),
        int8(sizes),
        float8(floats),
        float8(array, null=mask),
        text(names),
        raw(blobs),
        timestamptz(times),
        constant(b"ok", n),
        constant(None, n),
        int4(np.arange(n, dtype=np.int64) - 2**31),
    ]
    types = [
        "int4",
        "int8",
        "float8",
        "float8",
        "text",
        "bytea",
        "timestamptz",
        "text",
        "text",
        "int4",
    ]
    rows = list(
        zip(
            ids,
            sizes,
            floats,
            [None if null else v for v, null in zip(array.tolist(), mask, strict=True)],
            names,
            blobs,
            map(as_utc, times),
            ["ok"] * n,
            [None] * n,
            range(-(2**31), n - 2**31),
            strict=True,
        )
    )
    expected = psycopg_stream(types, rows)
    assert ours(fields) == expected
    # The same rows a few at a time: the gather works chunk by chunk.
    chunk, pgcopy._CHUNK = pgcopy._CHUNK, data.draw(st.integers(1, 400), label="chunk")
    try:
        assert ours(fields) == expected
    finally:
        pgcopy._CHUNK = chunk


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(nullable(INT4), nullable(FLOATS), nullable(DATETIMES)), max_size=30),
)
def test_fixed_width_rows_only(rows: list[tuple[Any, ...]]) -> None:
    """No variable-width field (NULLs aside): the fixed-width block is the rows."""
    ids, floats, times = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
    fields = [int4(ids), float8(floats), timestamptz(times), constant(None, len(rows))]
    expected = psycopg_stream(
        ["int4", "float8", "timestamptz", "int4"],
        [(i, f, as_utc(t), None) for i, f, t in rows],
    )
    assert ours(fields) == expected


def test_extremes_and_all_null_columns() -> None:
    n = 3
    times = [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), datetime(2000, 1, 1)]
    zones = [timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, seconds=-1)), UTC]
    aware = [t.replace(tzinfo=z) for t, z in zip(times, zones, strict=True)]
    fields = [
        int4([-(2**31), 2**31 - 1, 0]),
        int8([-(2**63), 2**63 - 1, None]),
        timestamptz(times),
        timestamptz(aware),
        text([None] * n),
        raw([None] * n),
        timestamptz([None] * n),
        int4([None] * n),
        text(["", "😀 non-BMP", "ok"]),
    ]
    rows = list(
        zip(
            [-(2**31), 2**31 - 1, 0],
            [-(2**63), 2**63 - 1, None],
            map(as_utc, times),
            aware,
            [None] * n,
            [None] * n,
            [None] * n,
            [None] * n,
            ["", "😀 non-BMP", "ok"],
            strict=True,
        )
    )
    types = [
        "int4",
        "int8",
        "timestamptz",
        "timestamptz",
        "text",
        "bytea",
        "timestamptz",
        "int4",
        "text",
    ]
    assert ours(fields) == psycopg_stream(types, rows)


def test_rows_of_constants_only() -> None:
    fields = [constant(b"ok", 3), constant(None, 3), int4([7, 7, 7])]
    expected = psycopg_stream(["text", "text", "int4"], [("ok", None, 7)] * 3)
    assert ours(fields) == expected
    assert b"".join(encode_chunks(fields)) == encode_rows(fields)
    assert encode_rows([int4([])]) == b"" and list(encode_chunks([text([])])) == []


def test_timestamps_are_exact_where_floats_are_not() -> None:
    """Microseconds at the ends of the range, where a float timestamp() loses them."""
    values = [datetime(9999, 12, 31, 23, 59, 59, 999999), datetime(1, 1, 1, 0, 0, 0, 1)]
    micros = np.frombuffer(timestamptz(values).data, dtype=">i8").tolist()
    epoch = datetime(2000, 1, 1)
    assert micros == [(v - epoch) // timedelta(microseconds=1) for v in values]


def test_fields_with_different_row_counts_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"different numbers of rows \(field 0: 2 rows, field 1: 3"
    ):
        encode_rows([int4([1, 2]), text(["a", "b", "c"])])
    with pytest.raises(ValueError, match="at least one field"):
        encode_rows([])


def test_inconsistent_fields_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="add up to 4 bytes"):
        Field(np.array([4, -1], dtype=np.int32), b"abc")
    with pytest.raises(ValueError, match="int32"):
        Field(np.array([3], dtype=np.int64), b"abc")
    with pytest.raises(ValueError, match="-1"):
        Field(np.array([-2], dtype=np.int32), b"")
    with pytest.raises(OverflowError):
        int4([2**31])
    with pytest.raises(OverflowError):
        int8([None, 2**63])
    with pytest.raises(TypeError):
        int4([1.5])
    with pytest.raises(ValueError, match="NULL mask"):
        float8(np.zeros(3), null=np.zeros(2, dtype=bool))


# --- a real load -------------------------------------------------------------------------


def point_ewkb(geometry: shapely.Geometry) -> bytes:
    return shapely.to_wkb(shapely.set_srid(geometry, 4326), include_srid=True, byte_order=1)


@pytest.mark.postgres
def test_postgresql_loads_the_stream(pg_database_url: str) -> None:
    url = pg_database_url.replace("postgresql+psycopg://", "postgresql://")
    geometries = [
        shapely.Point(1.5, -2.25),
        None,
        shapely.Polygon([(0, 0), (1, 0), (1, 1), (0, 0)]),
        shapely.MultiLineString([[(0, 0), (1, 1)], [(2, 2), (3, 5)]]),
    ]
    documents = [{"a": 1, "b": [1, 2, "é"]}, None, {}, {"nested": {"x": None, "y": 1.5}}]
    times = [
        datetime(1, 1, 1),
        datetime(2021, 6, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        None,
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    columns: dict[str, list[Any]] = {
        "i4": [1, -(2**31), 2**31 - 1, None],
        "i8": [None, -(2**63), 2**63 - 1, 0],
        "t": ["plain", "", None, "ünïcødé 😀 𝔘"],
        "v": ["x" * 300, None, "ß", "a\tb\nc\\d"],
        "f": [math.inf, -0.0, math.nan, None],
        "ts": times,
        "j": documents,
        "g": geometries,
    }
    ewkb = [None if g is None else point_ewkb(g) for g in geometries]
    jsonb = [None if d is None else b"\x01" + json.dumps(d).encode() for d in documents]
    fields = [
        int4(columns["i4"]),
        int8(columns["i8"]),
        text(columns["t"]),
        text(columns["v"]),
        float8(columns["f"]),
        timestamptz(times),
        raw(jsonb),
        raw(ewkb),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(
            "CREATE TEMP TABLE loaded (n serial, i4 int4, i8 int8, t text, v varchar(400), "
            "f float8, ts timestamptz, j jsonb, g geometry(Geometry, 4326))"
        )
        names = ", ".join(columns)
        with conn.cursor().copy(f"COPY loaded ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            # Only write(): psycopg adds no header or trailer of its own, so we send them.
            copy.write(HEADER)
            copy.write(encode_rows(fields))
            for chunk in encode_chunks(fields):  # a second batch, in pieces
                copy.write(chunk)
            copy.write(TRAILER)
        rows = conn.execute(
            "SELECT i4, i8, t, v, f, ts, j, ST_AsBinary(g), ST_SRID(g) FROM loaded ORDER BY n"
        ).fetchall()
    assert len(rows) == 8
    for k, row in enumerate(rows):
        i4, i8, t, v, f, ts, j, g, srid = row
        i = k % 4
        assert (i4, i8, t, v) == tuple(columns[c][i] for c in ("i4", "i8", "t", "v"))
        expected_f = columns["f"][i]
        if expected_f is None or math.isnan(expected_f):
            assert (f is None) == (expected_f is None)
            assert expected_f is None or math.isnan(f)
        else:
            assert f == expected_f and math.copysign(1, f) == math.copysign(1, expected_f)
        assert ts == as_utc(times[i])
        assert j == documents[i]
        if geometries[i] is None:
            assert g is None and srid is None
        else:
            assert srid == 4326
            assert shapely.from_wkb(bytes(g)).equals_exact(geometries[i], 0)
