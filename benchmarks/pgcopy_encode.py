"""Binary COPY on the client: psycopg's per-row formatter vs the numpy batch encoder.

A batch of N rows shaped like a catalog ``datasets`` row (int4 id, six 10-25 character
strings, two timestamptz, ~100 bytes of EWKB, four float8 bbox values, ~35 bytes of jsonb,
"ok", NULL, NULL jsonb, one harvest time) becomes the bytes of a binary COPY stream two ways,
without a server (the bytes handed to the writer are collected, then checked equal):

(a) what ``bulk.copy_postgres`` did before the encoder: ``zip`` a tuple per row (naive
    times made UTC, EWKB and jsonb wrapped for a pass-through dumper), then
    ``Copy.write_row`` per row: psycopg's C row formatter, with the dumpers chosen by type
    as ``Copy.set_types`` does;
(b) :mod:`terrapipe.catalog.load.pgcopy`: a field per column, ``encode_rows``, and
    ``Copy.write`` of the header, the rows and the trailer.

Both start from the same column lists (the bbox as the numpy array ``shapely.bounds``
gives). Prints the median of the runs, in microseconds per row, and (b)/(a).

    .venv/bin/python benchmarks/pgcopy_encode.py                 # 20,000 rows, 5 runs
    .venv/bin/python benchmarks/pgcopy_encode.py --rows 100000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import repeat
from types import SimpleNamespace
from typing import Any

import numpy as np
from psycopg import adapters
from psycopg._copy_base import BinaryFormatter
from psycopg.adapt import AdaptersMap, Dumper, Transformer
from psycopg.copy import Copy
from psycopg.pq import Format

from terrapipe.catalog.load import pgcopy

GEOMETRY_OID = 900_000  # stands in for the PostGIS type's oid (there is no server here)
TYPES = (
    "int4",
    *(["varchar", "text"] + ["varchar"] * 4),
    "timestamptz",
    "timestamptz",
    GEOMETRY_OID,
    *(["float8"] * 4),
    "jsonb",
    "varchar",
    "text",
    "jsonb",
    "timestamptz",
)


class Wire(bytes):
    """Bytes already in a type's binary wire format (as the former ``bulk._Wire``)."""


def passthrough(oid: int) -> type[Dumper]:
    """A binary dumper sending bytes as they are (as the former ``bulk._passthrough_dumper``)."""

    class Passthrough(Dumper):
        format = Format.BINARY

        def dump(self, obj: bytes) -> bytes:
            return obj

    Passthrough.oid = oid
    return Passthrough


def utc(value: datetime | None) -> datetime | None:
    """As the former ``bulk._utc``: naive datetimes are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def copy_standin(write: Callable[[Any], object]) -> SimpleNamespace:
    """What ``Copy.write`` and ``Copy.write_row`` use of a ``Copy``: a formatter, a writer."""
    context = AdaptersMap(adapters)
    for oid in (GEOMETRY_OID, context.types["jsonb"].oid):
        context.register_dumper(Wire, passthrough(oid))
    tx = Transformer(context)
    oids = [t if isinstance(t, int) else context.types[t].oid for t in TYPES]
    tx.set_dumper_types(oids, Format.BINARY)
    return SimpleNamespace(formatter=BinaryFormatter(tx), _write=write)


def columns(n: int, seed: int = 1) -> dict[str, Any]:
    """Synthetic column lists of a batch of catalog datasets."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8)

    def strings(low: int, high: int) -> list[str]:
        sizes = rng.integers(low, high + 1, n)
        chars = letters[rng.integers(0, len(letters), sizes.sum())].tobytes().decode()
        ends = np.cumsum(sizes).tolist()
        return [chars[e - s : e] for e, s in zip(ends, sizes.tolist(), strict=True)]

    start = datetime(2015, 1, 1, tzinfo=UTC)
    offsets = rng.integers(0, 10 * 365 * 86400 * 10**6, n).tolist()
    time_start = [start + timedelta(microseconds=o) for o in offsets]
    time_end = [t + timedelta(hours=1) for t in time_start]
    xs = rng.uniform(-180, 179, n)
    ys = rng.uniform(-60, 69, n)
    bounds = np.column_stack([xs, ys, xs + 1, ys + 1])
    # EWKB polygons (SRID 4326) of 4 to 6 points: 81 to 113 bytes.
    vertices = rng.integers(4, 7, n).tolist()
    corners = np.stack([xs, ys, xs + 1, ys, xs + 1, ys + 1, xs, ys + 1, xs, ys], axis=1)
    footprint = []
    for i, k in enumerate(vertices):
        header = b"\x01\x03\x00\x00\x20\xe6\x10\x00\x00\x01\x00\x00\x00" + k.to_bytes(4, "little")
        ring = np.concatenate([corners[i, : 2 * (k - 1)], corners[i, :2]])
        footprint.append(header + ring.astype("<f8").tobytes())
    properties = [
        b'\x01{"cloud_cover": %d, "tile": "T%02dABC"}' % (i % 100, i % 60) for i in range(n)
    ]
    return {
        "ids": list(range(1, n + 1)),
        "meta": [strings(10, 25) for _ in range(6)],
        "time_start": time_start,
        "time_end": time_end,
        "footprint": footprint,
        "bounds": bounds,
        "properties": properties,
        "harvest_source": [None] * n,
        "harvested_at": datetime.now(UTC),
    }


def rows_psycopg(c: dict[str, Any], write: Callable[[Any], object]) -> None:
    """(a) A tuple per row (as ``bulk.copy_postgres`` builds them), ``Copy.write_row`` each."""
    copy = copy_standin(write)
    rows = zip(
        c["ids"],
        *c["meta"],
        (utc(t) for t in c["time_start"]),
        (utc(t) for t in c["time_end"]),
        (None if g is None else Wire(g) for g in c["footprint"]),
        *c["bounds"].T.tolist(),
        (Wire(p) for p in c["properties"]),
        repeat("ok"),
        repeat(None),
        (None if h is None else Wire(h) for h in c["harvest_source"]),
        repeat(c["harvested_at"]),
    )
    for row in rows:
        Copy.write_row(copy, row)
    write(copy.formatter.end())


def fields(c: dict[str, Any]) -> list[pgcopy.Field]:
    """A field per column."""
    n = len(c["ids"])
    bounds = c["bounds"]
    return [
        pgcopy.int4(c["ids"]),
        *(pgcopy.text(column) for column in c["meta"]),
        pgcopy.timestamptz(c["time_start"]),
        pgcopy.timestamptz(c["time_end"]),
        pgcopy.raw(c["footprint"]),
        *(pgcopy.float8(bounds[:, k]) for k in range(4)),
        pgcopy.raw(c["properties"]),
        pgcopy.constant(b"ok", n),
        pgcopy.constant(None, n),
        pgcopy.raw(c["harvest_source"]),
        pgcopy.constant(pgcopy.timestamptz([c["harvested_at"]]).data, n),
    ]


def rows_numpy(c: dict[str, Any], write: Callable[[Any], object]) -> None:
    """(b) The fields, ``encode_rows``, and ``Copy.write`` of header, rows and trailer."""
    copy = copy_standin(write)
    Copy.write(copy, pgcopy.HEADER)
    Copy.write(copy, pgcopy.encode_rows(fields(c)))
    Copy.write(copy, pgcopy.TRAILER)
    write(copy.formatter.end())  # nothing: psycopg adds no header or trailer of its own


def rows_numpy_chunks(c: dict[str, Any], write: Callable[[Any], object]) -> None:
    """(b') The same with ``encode_chunks``: a ``Copy.write`` per piece, no joined batch."""
    copy = copy_standin(write)
    Copy.write(copy, pgcopy.HEADER)
    for chunk in pgcopy.encode_chunks(fields(c)):
        Copy.write(copy, chunk)
    Copy.write(copy, pgcopy.TRAILER)
    write(copy.formatter.end())


def stream(
    rows: Callable[[dict[str, Any], Callable[[Any], object]], None], c: dict[str, Any]
) -> bytes:
    """All the bytes the writer gets."""
    chunks: list[bytes] = []
    rows(c, chunks.append)
    return b"".join(chunks)


def discard(data: Any) -> None:
    """A writer that drops the data, as libpq takes it (so that its memory is reused)."""


def seconds(fn: Callable[[], object]) -> float:
    """The wall time of a call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    c = columns(args.rows)
    expected = stream(rows_psycopg, c)
    if stream(rows_numpy, c) != expected or stream(rows_numpy_chunks, c) != expected:
        raise SystemExit("the encodings differ")
    results = {
        "(a) tuples + psycopg write_row": rows_psycopg,
        "(b) pgcopy fields + encode_rows": rows_numpy,
        "(b') ... + encode_chunks": rows_numpy_chunks,
    }
    samples: dict[str, list[float]] = {name: [] for name in results}
    for _ in range(args.runs):  # interleaved, so that a busy machine slows all alike
        for name, fn in results.items():
            samples[name].append(seconds(lambda fn=fn: fn(c, discard)))
    times = {name: statistics.median(s) for name, s in samples.items()}
    size = len(expected) / args.rows
    print(f"{args.rows:,} rows of {size:.0f} bytes, median of {args.runs} runs")
    for name, t in times.items():
        print(f"  {name:32s} {t / args.rows * 1e6:6.2f} µs/row")
    a = times["(a) tuples + psycopg write_row"]
    for name in list(times)[1:]:
        print(f"  {name[:4]} / (a)                       {times[name] / a:6.0%}")


if __name__ == "__main__":
    main()
