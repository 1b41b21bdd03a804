"""Django-style field lookups (``instrument__iexact="oli"``) turned into SQL conditions.

A key is ``FIELD`` or ``FIELD__OPERATOR``; ``properties__KEY[__KEY...][__OPERATOR]``
reaches into the JSON properties. Values are checked against the field's type and always
become bound parameters. String matching is case-sensitive except the ``i...``
operators (case folding is ASCII-only on SQLite). A properties lookup matches only values
of the same JSON type as the given value: ``properties__cloud_cover__lt=20`` compares
numbers, never strings.

What a database would refuse is refused here first, naming the criterion: a NUL byte in a
key or a text value, an integer outside 64 bits, more than :data:`MAX_CRITERIA` lookups.
An ``__in`` list, however long, is one bound parameter (an array on PostgreSQL, a JSON
array read by ``json_each`` on SQLite), so no parameter limit applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from terrapipe.catalog.models import datasets_table
from terrapipe.catalog.timespan import parse_datetime
from terrapipe.errors import QueryError

STRING_FIELDS = ("entry_id", "title", "collection", "platform", "instrument", "provider")
FIELDS: dict[str, str] = {
    "id": "int",
    **{name: "str" for name in STRING_FIELDS},
    "time_start": "datetime",
    "time_end": "datetime",
    "harvest_status": "str",
    "properties": "json",
}
TEXT_OPERATORS = (
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
)
OPERATORS = ("exact", *TEXT_OPERATORS, "in", "gt", "gte", "lt", "lte", "range", "isnull")
_KEY = re.compile(r'^[^"\\\x00]+$')
MAX_CRITERIA = 200  # SQLite parses AND chains as a tree at most 1,000 deep
INT64 = (-(2**63), 2**63 - 1)


def valid_fields_text() -> str:
    """The valid fields, for error messages."""
    return ", ".join(FIELDS) + " (properties__<key>...)"


def parse_key(key: str) -> tuple[str, tuple[str, ...], str]:
    """(field, JSON key path, operator) of a lookup key; raises naming the valid choices."""
    if not isinstance(key, str) or not key:
        raise QueryError(f"invalid criteria key {key!r}: expected FIELD or FIELD__OPERATOR")
    if "\x00" in key:
        raise QueryError(f"invalid criteria key {key!r}: a key may not contain a NUL byte")
    field, *rest = key.split("__")
    if field not in FIELDS:
        raise QueryError(f"unknown field {field!r} in {key!r}; valid fields: {valid_fields_text()}")
    if FIELDS[field] == "json":
        if rest and rest[-1] in OPERATORS and len(rest) > 1:
            path, op = tuple(rest[:-1]), rest[-1]
        else:
            path, op = tuple(rest), "exact"
        if not path or not all(_KEY.match(k) for k in path):
            raise QueryError(
                f"invalid properties lookup {key!r}: expected properties__KEY[__OPERATOR] "
                "with keys free of quotes and backslashes"
            )
        return field, path, op
    if len(rest) > 1 or (rest and rest[0] not in OPERATORS):
        bad = "__".join(rest)
        raise QueryError(
            f"unknown operator {bad!r} in {key!r}; valid operators: {', '.join(OPERATORS)}"
        )
    return field, (), rest[0] if rest else "exact"


def build_conditions(criteria: Mapping[str, Any], dialect: str) -> list[ColumnElement[bool]]:
    """SQL conditions (AND-ed by the caller) for every lookup in ``criteria``."""
    if not isinstance(criteria, Mapping):
        raise QueryError(f"invalid criteria {criteria!r}: expected a mapping of lookups")
    if len(criteria) > MAX_CRITERIA:
        raise QueryError(
            f"too many criteria ({len(criteria)}): at most {MAX_CRITERIA} lookups per search; "
            "use '__in' lists to match many values of one field"
        )
    conditions = []
    for key, value in criteria.items():
        field, path, op = parse_key(key)
        if FIELDS[field] == "json":
            conditions.append(_json_condition(key, path, op, value, dialect))
        else:
            column = datasets_table.c[field]
            conditions.append(_condition(key, column, FIELDS[field], op, value, dialect))
    return conditions


def _condition(
    key: str, column: Any, kind: str, op: str, value: Any, dialect: str
) -> ColumnElement[bool]:
    if op == "isnull":
        return column.is_(None) if _bool(key, value) else column.is_not(None)
    if op == "exact" and value is None:
        return column.is_(None)
    if op in TEXT_OPERATORS and kind != "str":
        raise QueryError(
            f"operator {op!r} in {key!r} needs a text field, {key.split('__')[0]!r} is {kind}"
        )
    coerce = _COERCE[kind]
    if op == "in":
        items = [coerce(key, v) for v in _sequence(key, value)]
        return _in_list(column, items, kind, dialect)
    if op == "range":
        low, high = _pair(key, value)
        return sa.and_(column >= coerce(key, low), column <= coerce(key, high))
    return _compare(column, op, coerce(key, value), kind, dialect)


def _compare(column: Any, op: str, value: Any, kind: str, dialect: str) -> ColumnElement[bool]:
    ordered = column.collate("C") if kind == "str" and dialect == "postgresql" else column
    if op == "exact":
        return column == value
    if op in ("gt", "gte", "lt", "lte"):
        return {
            "gt": ordered > value,
            "gte": ordered >= value,
            "lt": ordered < value,
            "lte": ordered <= value,
        }[op]
    folded = op.startswith("i")
    text = sa.func.lower(column) if folded else column
    needle = sa.func.lower(sa.literal(value, sa.String)) if folded else sa.literal(value, sa.String)
    base = op[1:] if folded else op
    if base == "exact":
        return text == needle
    if base == "contains":
        finder = sa.func.strpos if dialect == "postgresql" else sa.func.instr
        return finder(text, needle) > 0
    if base == "startswith":
        return sa.func.substr(text, 1, sa.func.length(needle)) == needle
    # endswith
    return sa.func.substr(text, sa.func.length(text) - sa.func.length(needle) + 1) == needle


def _json_condition(
    key: str, path: tuple[str, ...], op: str, value: Any, dialect: str
) -> ColumnElement[bool]:
    props = datasets_table.c.properties
    if op == "isnull" or (op == "exact" and value is None):
        missing = _json_type(props, path, dialect)
        is_null = sa.or_(missing.is_(None), missing == "null")
        return is_null if (op == "exact" or _bool(key, value)) else sa.not_(is_null)
    sample = _sample(key, op, value)
    kind = _json_kind(key, sample)
    if op in TEXT_OPERATORS and kind != "str":
        raise QueryError(f"operator {op!r} in {key!r} needs a text value, got {sample!r}")
    column = _json_value(props, path, kind, dialect)
    coerce = _COERCE[kind]
    if op == "in":
        items = [coerce(key, v) for v in _sequence(key, value)]
        for item in items:
            _same_kind(key, kind, item)
        return _in_list(column, items, kind, dialect)
    if op == "range":
        low, high = (coerce(key, v) for v in _pair(key, value))
        _same_kind(key, kind, low)
        _same_kind(key, kind, high)
        return sa.and_(column >= low, column <= high)
    return _compare(column, op, coerce(key, value), kind, dialect)


_ARRAY_TYPES: dict[str, Any] = {
    "int": sa.BigInteger(),
    "str": sa.Text(),
    "datetime": sa.DateTime(timezone=True),
    "number": sa.Float(),
    "bool": sa.Boolean(),
}
_SQLITE_DATETIME = sqlite.DATETIME().bind_processor(sqlite.dialect())


def _in_list(column: Any, items: list[Any], kind: str, dialect: str) -> ColumnElement[bool]:
    """``column IN items`` with the whole list as one bound parameter, however long.

    PostgreSQL: ``column = ANY(:array)``; SQLite: ``column IN (SELECT value FROM
    json_each(:json))``, datetimes in the text form SQLite stores them in.
    """
    if dialect == "postgresql":
        if kind == "number":  # one element type per array: float8, as the compared value
            items = [float(v) for v in items]
        array = sa.bindparam(None, items, type_=ARRAY(_ARRAY_TYPES[kind]))
        return column == sa.any_(array)
    if kind == "datetime":
        items = [_SQLITE_DATETIME(v.astimezone(UTC).replace(tzinfo=None)) for v in items]
    document = sa.literal(json.dumps(items), sa.String)
    values = sa.select(sa.column("value")).select_from(sa.func.json_each(document))
    return column.in_(values.scalar_subquery())


def _sample(key: str, op: str, value: Any) -> Any:
    if op == "in":
        items = _sequence(key, value)
        return items[0] if items else ""
    if op == "range":
        return _pair(key, value)[0]
    return value


def _json_kind(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    raise QueryError(
        f"invalid value {value!r} for {key!r}: properties lookups take a string, "
        "a number or a boolean"
    )


def _same_kind(key: str, kind: str, value: Any) -> None:
    if _json_kind(key, value) != kind:
        raise QueryError(f"invalid value {value!r} for {key!r}: mixed types in one lookup")


def _json_type(props: Any, path: tuple[str, ...], dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.jsonb_typeof(props.op("#>")(_pg_path(path)))
    return sa.func.json_type(props, _sqlite_path(path))


_SQLITE_TYPES = {"number": ("integer", "real"), "str": ("text",), "bool": ("true", "false")}
_PG_TYPES = {"number": "number", "str": "string", "bool": "boolean"}
_PG_CASTS = {"number": sa.Float(), "str": sa.Text(), "bool": sa.Boolean()}


def _json_value(props: Any, path: tuple[str, ...], kind: str, dialect: str) -> Any:
    """The value at ``path`` when it has JSON type ``kind``, else NULL (never a cast error)."""
    if dialect == "postgresql":
        node = props.op("#>")(_pg_path(path))
        text = props.op("#>>")(_pg_path(path))
        typed = text if kind == "str" else sa.cast(text, _PG_CASTS[kind])
        value = sa.case((sa.func.jsonb_typeof(node) == _PG_TYPES[kind], typed), else_=None)
        return sa.type_coerce(value, _PG_CASTS[kind])
    json_path = _sqlite_path(path)
    typed = sa.func.json_extract(props, json_path)
    value = sa.case(
        (sa.func.json_type(props, json_path).in_(_SQLITE_TYPES[kind]), typed), else_=None
    )
    return sa.type_coerce(value, _PG_CASTS[kind])


def _pg_path(path: tuple[str, ...]) -> Any:
    return sa.bindparam(None, list(path), type_=ARRAY(sa.Text()))


def _sqlite_path(path: tuple[str, ...]) -> Any:
    return sa.literal("$" + "".join(f'."{k}"' for k in path), sa.String)


def _sequence(key: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        raise QueryError(f"invalid value {value!r} for {key!r}: '__in' takes a list")
    return list(value)


def _pair(key: str, value: Any) -> tuple[Any, Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise QueryError(f"invalid value {value!r} for {key!r}: '__range' takes [low, high]")
    return value[0], value[1]


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise QueryError(f"invalid value {value!r} for {key!r}: '__isnull' takes true or false")
    return value


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QueryError(f"invalid value {value!r} for {key!r}: expected an integer")
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"invalid value {value!r} for {key!r}: expected an integer") from None
    return _in_int64(key, number)


def _in_int64(key: str, number: int) -> int:
    if not INT64[0] <= number <= INT64[1]:
        raise QueryError(
            f"invalid value {_short(number)} for {key!r}: integers must fit in 64 bits "
            f"({INT64[0]}..{INT64[1]})"
        )
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _as_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise QueryError(f"invalid value {value!r} for {key!r}: expected a string")
    if "\x00" in value:
        raise QueryError(
            f"invalid value {_short(value)} for {key!r}: text may not contain a NUL byte"
        )
    return value


def _as_number(key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError(f"invalid value {value!r} for {key!r}: expected a number")
    return _in_int64(key, value) if isinstance(value, int) else value


def _as_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise QueryError(f"invalid value {value!r} for {key!r}: expected true or false")
    return value


def _as_datetime(key: str, value: Any) -> datetime:
    return parse_datetime(value, name=f"value for {key!r}")


_COERCE: dict[str, Callable[[str, Any], Any]] = {
    "int": _as_int,
    "str": _as_str,
    "datetime": _as_datetime,
    "number": _as_number,
    "bool": _as_bool,
}
