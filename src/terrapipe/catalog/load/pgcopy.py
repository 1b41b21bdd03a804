"""PostgreSQL binary ``COPY`` rows for a whole batch at once, encoded column by column.

psycopg's ``Copy.write_row`` formats one row per call, from a tuple per row. Here each column
of a batch becomes a :class:`Field` once (every value's length, -1 for NULL, and the non-NULL
values' wire bytes concatenated; the values are converted by C-level ``map``/``join`` calls
and numpy) and :func:`encode_rows` lays out all the rows with numpy: the field counts, the
length prefixes and the fields of one width on every row fill a block of fixed width per
row, and a byte gather interleaves its segments with the values of the variable-width
fields. No Python code runs per row.

A stream is ``HEADER``, the rows of any number of batches, then ``TRAILER``. With psycopg,
send all three with ``Copy.write`` and no ``write_row`` in the same ``COPY``: psycopg passes
what ``write`` gets through as it is and adds no header or trailer of its own::

    with cursor.copy("COPY t (a, b) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(HEADER)
        for batch in batches:  # ~20,000 rows each
            copy.write(encode_rows([int4(batch.a), text(batch.b)]))
        copy.write(TRAILER)

:func:`encode_chunks` gives the same bytes in ~256 KiB pieces, to ``write`` one by one
(psycopg cuts larger buffers into 128 KiB pieces anyway) without joining a batch's rows.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, repeat
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # flags, extension
TRAILER = b"\xff\xff"

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's timestamp epoch
_NAIVE_EPOCH = datetime(2000, 1, 1)
_INT4_MAX = np.iinfo(np.int32).max
_DELTA = tuple(map(operator.attrgetter, ("days", "seconds", "microseconds")))
_CHUNK = 1 << 18  # bytes of rows gathered at a time: bounds the temporaries, keeps them cached
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """One column of a batch: each row's value length (-1: NULL), the values concatenated."""

    lengths: np.ndarray
    data: bytes

    def __post_init__(self) -> None:
        """Check the lengths (1-d int32, -1 or more) against the data, as the stream needs."""
        lengths = self.lengths
        if not isinstance(lengths, np.ndarray) or lengths.ndim != 1 or lengths.dtype != np.int32:
            raise ValueError("lengths must be a one-dimensional int32 array")
        if lengths.size and lengths.min() < -1:
            raise ValueError("lengths must be -1 (NULL) or non-negative")
        size = int(lengths.sum(dtype=np.int64, where=lengths > 0))
        if size != len(self.data):
            raise ValueError(f"the lengths add up to {size} bytes, the data has {len(self.data)}")

    def __len__(self) -> int:
        """The number of rows."""
        return len(self.lengths)


def _nulls(values: Sequence[object]) -> np.ndarray | None:
    """A mask of the None values, or None if there are none (looked for at C speed)."""
    if isinstance(values, np.ndarray):
        if values.dtype != object:
            return None
        values = values.tolist()
    if None not in values:
        return None
    return np.fromiter(map(operator.is_, values, repeat(None)), dtype=bool, count=len(values))


def _all_null(values: Sequence[object]) -> Field | None:
    """A field of NULLs if every value is None."""
    n = len(values)
    if n and values[0] is None and values[-1] is None and list(values).count(None) == n:
        return constant(None, n)
    return None


def _present(values: Sequence[_T], null: np.ndarray | None) -> Sequence[_T]:
    """The values that are not None."""
    return values if null is None else list(compress(values, ~null))


def _column(sizes: np.ndarray, null: np.ndarray | None, data: bytes) -> Field:
    """A field from the sizes of its non-NULL values, its NULL mask and the values' bytes."""
    if sizes.size and sizes.max() > _INT4_MAX:
        raise ValueError("a value is longer than a binary COPY field can be (2 GiB)")
    if null is None:
        return Field(sizes.astype(np.int32), data)
    lengths = np.full(len(null), -1, dtype=np.int32)
    lengths[~null] = sizes
    return Field(lengths, data)


def _fixed(values: np.ndarray, null: np.ndarray | None) -> Field:
    """A fixed-width column from its non-NULL values (big-endian already) and NULL mask."""
    sizes = np.full(len(values), values.dtype.itemsize, dtype=np.int64)
    return _column(sizes, null, values.tobytes())


def _integers(values: ArrayLike | Sequence[int | None], dtype: str) -> Field:
    """Integers (None: NULL) as big-endian ``dtype``, refusing what is not or does not fit."""
    array = values if isinstance(values, np.ndarray) else np.array(values)
    null = None
    if array.dtype == object:  # NULLs (or integers too big even for int64)
        null = _nulls(array)
        array = np.array(_present(array.tolist(), null))
    if array.dtype == object:
        raise OverflowError(f"a value is not an integer or out of range for {dtype[1:]}")
    if array.size and array.dtype.kind not in "iub":
        raise TypeError(f"integers expected, not {array.dtype}")
    info = np.iinfo(dtype)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise OverflowError(f"a value is out of range for {dtype[1:]}")
    return _fixed(array.astype(dtype), null)


def int4(values: ArrayLike | Sequence[int | None]) -> Field:
    """An ``int4`` column (None: NULL): 4 bytes, big-endian."""
    return _integers(values, ">i4")


def int8(values: ArrayLike | Sequence[int | None]) -> Field:
    """An ``int8`` column (None: NULL): 8 bytes, big-endian."""
    return _integers(values, ">i8")


def float8(values: ArrayLike | Sequence[float | None], null: ArrayLike | None = None) -> Field:
    """A ``float8`` column, NULL where ``null`` is true or a value is None (NaN is a value)."""
    if not isinstance(values, np.ndarray):
        none = _nulls(values)
        if none is not None:  # numpy would make None a NaN
            values = [0.0 if v is None else v for v in values]
            null = none if null is None else none | np.asarray(null, dtype=bool)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError("float8 values must be one-dimensional")
    if null is not None:
        null = np.asarray(null, dtype=bool)
        if null.shape != array.shape:
            raise ValueError(f"{len(array)} values but a NULL mask of {len(null)}")
        if null.any():
            array = array[~null]
        else:
            null = None
    return _fixed(array.astype(">f8"), null)


def timestamptz(values: Sequence[datetime | None]) -> Field:
    """A ``timestamptz`` column: exact microseconds since 2000-01-01 UTC; naive means UTC."""
    if (nulls := _all_null(values)) is not None:
        return nulls
    null = None
    present = values
    # A datetime difference is exact (aware ones: in UTC, whatever their zones), in C.
    try:
        deltas = list(map(operator.sub, present, repeat(_EPOCH)))
    except TypeError:  # NULLs or naive datetimes
        null = _nulls(values)
        present = _present(values, null)
        try:
            deltas = list(map(operator.sub, present, repeat(_EPOCH)))
        except TypeError:
            try:
                deltas = list(map(operator.sub, present, repeat(_NAIVE_EPOCH)))
            except TypeError:  # naive and aware ones
                aware = [v.replace(tzinfo=UTC) if v.tzinfo is None else v for v in present]
                deltas = list(map(operator.sub, aware, repeat(_EPOCH)))
    days, seconds, micros = (np.fromiter(map(a, deltas), np.int64, len(deltas)) for a in _DELTA)
    days *= 86_400
    days += seconds
    days *= 1_000_000
    days += micros
    return _fixed(days.astype(">i8"), null)


def raw(values: Sequence[bytes | None]) -> Field:
    """Values already in their type's binary wire format (EWKB, ``b"\\x01"`` + JSON...)."""
    null = None
    present = values
    try:  # fails if there are NULLs: no need to look for them first
        data = b"".join(present)
    except TypeError:
        if (nulls := _all_null(values)) is not None:
            return nulls
        null = _nulls(values)
        present = _present(values, null)
        data = b"".join(present)
    sizes = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
    return _column(sizes, null, data)


def text(values: Sequence[str | None]) -> Field:
    """A ``text`` or ``varchar`` column, UTF-8 (None: NULL)."""
    null = None
    present = values
    try:  # fails if there are NULLs: no need to look for them first
        joined = "".join(present)
    except TypeError:
        if (nulls := _all_null(values)) is not None:
            return nulls
        null = _nulls(values)
        present = _present(values, null)
        joined = "".join(present)
    data = joined.encode()
    if len(data) == len(joined):  # all ASCII: the byte lengths are the str lengths
        sizes = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
    else:
        sizes = np.fromiter(map(len, map(str.encode, present)), np.int64, count=len(present))
    return _column(sizes, null, data)


def constant(value: bytes | None, n: int) -> Field:
    """The same wire bytes (or NULL) on each of ``n`` rows."""
    if value is None:
        return Field(np.full(n, -1, dtype=np.int32), b"")
    return Field(np.full(n, len(value), dtype=np.int32), value * n)


def encode_rows(fields: Sequence[Field]) -> bytes:
    """The rows section of a binary COPY stream (no header or trailer) for all the rows."""
    return b"".join(encode_chunks(fields))


def encode_chunks(fields: Sequence[Field]) -> Iterator[bytes]:
    """The rows section in pieces of about 256 KiB, to write one by one without joining them."""
    if not fields:
        raise ValueError("a row needs at least one field")
    if len(fields) > np.iinfo(np.int16).max:
        raise ValueError(f"too many fields for a row: {len(fields)}")
    if len({len(f) for f in fields}) != 1:
        counts = ", ".join(f"field {i}: {len(f)} rows" for i, f in enumerate(fields))
        raise ValueError(f"the fields have different numbers of rows ({counts})")
    n = len(fields[0])
    if n == 0:
        return iter(())
    return _chunks(n, *_layout(fields, n))


def _layout(
    fields: Sequence[Field], n: int
) -> tuple[list[bytes | np.ndarray], list[int], list[Field]]:
    """A row's block parts (bytes: the same on every row), its segments, its variable fields.

    A row: the field count, then each field's length prefix and value. The fields with one
    length on every row, and the prefixes of the others, make a block of fixed width per
    row, whose segments alternate with the values of the variable-width fields.
    """
    parts: list[bytes | np.ndarray] = [struct.pack(">h", len(fields))]
    segments = [2]  # block bytes before each variable-width value, and after the last one
    variable: list[Field] = []
    for field in fields:
        lengths = field.lengths
        width = int(lengths[0])
        if (lengths == width).all():
            parts.append(struct.pack(">i", width))
            segments[-1] += 4 + max(width, 0)
            if width > 0:
                parts.append(np.frombuffer(field.data, dtype=f"V{width}"))
        else:
            parts.append(lengths.astype(">i4").view("V4"))
            segments[-1] += 4
            segments.append(0)
            variable.append(field)
    return parts, segments, variable


def _chunks(
    n: int, parts: list[bytes | np.ndarray], segments: list[int], variable: list[Field]
) -> Iterator[bytes]:
    """The rows a chunk at a time: the block's rows, gathered with the variable values."""
    width = sum(segments)
    sizes = [np.maximum(f.lengths, 0).astype(np.int64) for f in variable]
    offsets = [np.concatenate(([0], np.cumsum(s))) for s in sizes]
    total = n * width + sum(int(o[-1]) for o in offsets)
    step = max(1, min(n, _CHUNK * n // total))
    block = np.empty((step, width), dtype=np.uint8)
    # The parts that differ between rows are fields of a structured view of the block rows
    # (copied as one item per row: much faster than narrow 2-d slices).
    names: list[str] = []
    formats: list[np.dtype] = []
    starts: list[int] = []
    columns: list[np.ndarray] = []
    at = 0
    for part in parts:
        if isinstance(part, bytes):
            block[:, at : at + len(part)] = np.frombuffer(part, np.uint8)
            at += len(part)
        else:
            names.append(f"f{len(names)}")
            formats.append(part.dtype)
            starts.append(at)
            columns.append(part)
            at += part.dtype.itemsize
    layout = np.dtype({"names": names, "formats": formats, "offsets": starts, "itemsize": width})
    records = block.view(layout)[:, 0]
    values = [np.frombuffer(f.data, np.uint8) for f in variable]
    segment_starts = np.cumsum([0, *segments[:-1]])
    steps = index = np.empty(0, dtype=np.intp)
    for first in range(0, n, step):
        last = min(first + step, n)
        rows = block[: last - first]
        for name, column in zip(names, columns, strict=True):
            records[name][: last - first] = column[first:last]
        if not variable:
            yield rows.tobytes()
            continue
        # The source: these rows of the block, then each field's values for them. Each row
        # takes runs of it: segment 0, value 1, segment 1, ..., value m, segment m.
        pieces = (v[o[first] : o[last]] for v, o in zip(values, offsets, strict=True))
        source = np.concatenate([rows.ravel(), *pieces])
        run_sizes = np.empty((last - first, len(segments) + len(variable)), dtype=np.int64)
        run_starts = np.empty_like(run_sizes)
        run_sizes[:, 0::2] = segments
        run_starts[:, 0::2] = np.arange(0, rows.size, width)[:, None] + segment_starts
        base = rows.size
        for j, (s, o) in enumerate(zip(sizes, offsets, strict=True), start=1):
            run_sizes[:, 2 * j - 1] = s[first:last]
            run_starts[:, 2 * j - 1] = o[first:last] + (base - o[first])
            base += int(o[last] - o[first])
        keep = run_sizes.ravel() > 0
        run_sizes = run_sizes.ravel()[keep]
        run_starts = run_starts.ravel()[keep]
        # Each output byte's index in the source: the previous byte's plus one, but for the
        # first byte of a run: a cumulative sum of steps, all 1 but at the runs' starts.
        # Every source byte is used once, so the output is as long as the source.
        size = len(source)
        if len(steps) < size:
            steps = np.ones(size, dtype=np.intp)
            index = np.empty(size, dtype=np.intp)
        jumps = np.cumsum(run_sizes[:-1])
        steps[jumps] = run_starts[1:] - run_starts[:-1] - run_sizes[:-1] + 1
        steps[0] = run_starts[0]
        np.cumsum(steps[:size], out=index[:size])
        steps[jumps] = 1
        steps[0] = 1
        yield source.take(index[:size], mode="clip").tobytes()
