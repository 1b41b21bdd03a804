"""Lookups: search() equals a brute-force Python filter over the same rows (both backends)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets
from terrapipe.catalog.query import MAX_LIMIT, count, search
from terrapipe.errors import QueryError

WORDS = [
    "landsat",
    "Landsat",
    "LANDSAT-8",
    "sentinel-2",
    "Sentinel",
    "oli",
    "OLI",
    "msi",
    "a_b",
    "x%y",
]
STRING_FIELDS = ["entry_id", "title", "collection", "platform", "instrument", "provider"]
T0 = datetime(2020, 1, 1, tzinfo=UTC)


def _rows(seed: int = 7, n: int = 60) -> list[Dataset]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = T0 + timedelta(hours=rng.randrange(0, 24 * 400)) if rng.random() > 0.1 else None
        end = (
            start + timedelta(hours=rng.randrange(0, 72)) if start and rng.random() > 0.4 else None
        )
        props: dict[str, Any] = {}
        choice = rng.random()
        if choice < 0.6:
            props["cloud_cover"] = rng.choice([rng.randrange(0, 100), round(rng.random() * 100, 2)])
        elif choice < 0.8:
            props["cloud_cover"] = rng.choice(["high", "low", "20"])
        if rng.random() < 0.7:
            props["flag"] = rng.random() < 0.5
        if rng.random() < 0.7:
            props["tile"] = rng.choice(WORDS)
        if rng.random() < 0.5:
            props["eo"] = {"gsd": rng.choice([10, 15, 30, 30.5])}
        x, y = rng.uniform(-170, 169), rng.uniform(-80, 79)
        out.append(
            Dataset(
                entry_id=f"{rng.choice(WORDS)}_{i:03d}",
                title=rng.choice([*WORDS, None]),
                collection=rng.choice([*WORDS[:5], None]),
                platform=rng.choice(WORDS + [None]),
                instrument=rng.choice(["oli", "OLI", "msi", "MSI", "oli-tirs", None]),
                provider=rng.choice(["USGS", "ESA", "usgs", None]),
                time_start=start,
                time_end=end,
                footprint=shapely.box(x, y, x + 1, y + 1),
                properties=props,
                uris=(DatasetURI(f"https://example.test/{i}.tif", size=i),),
            )
        )
    return out


ROWS = _rows()
TIMES = sorted(
    {d.time_start for d in ROWS if d.time_start} | {d.time_end for d in ROWS if d.time_end}
)

text = st.one_of(
    st.sampled_from(WORDS + ["", "a", "L", "sat", "SAT", "_", "%", "-8", "oli"]),
    st.text(alphabet="aAlLoOsS-_%", max_size=4),
)
STRING_OPS = [
    "exact",
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
    "gt",
    "gte",
    "lt",
    "lte",
]
ORDER_OPS = ["exact", "gt", "gte", "lt", "lte"]


@st.composite
def lookups(draw: Any) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["string", "id", "time", "number", "pstring", "bool", "null"]))
    if kind == "string":
        field = draw(st.sampled_from(STRING_FIELDS))
        op = draw(st.sampled_from([*STRING_OPS, "in", "range", "isnull"]))
        if op == "in":
            return f"{field}__in", draw(st.lists(text, max_size=3))
        if op == "range":
            return f"{field}__range", sorted([draw(text), draw(text)])
        if op == "isnull":
            return f"{field}__isnull", draw(st.booleans())
        return f"{field}__{op}", draw(text)
    if kind == "id":
        op = draw(st.sampled_from([*ORDER_OPS, "in"]))
        if op == "in":
            return "id__in", draw(st.lists(st.integers(0, 70), max_size=4))
        return f"id__{op}", draw(st.integers(0, 70))
    if kind == "time":
        field = draw(st.sampled_from(["time_start", "time_end"]))
        op = draw(st.sampled_from([*ORDER_OPS, "range", "isnull"]))
        when = draw(
            st.one_of(
                st.sampled_from(TIMES),
                st.datetimes(
                    min_value=datetime(2019, 12, 1),
                    max_value=datetime(2021, 3, 1),
                    timezones=st.just(UTC),
                ),
            )
        )
        if op == "isnull":
            return f"{field}__isnull", draw(st.booleans())
        if op == "range":
            other = draw(st.sampled_from(TIMES))
            return f"{field}__range", sorted([when, other])
        value = draw(st.sampled_from([when, when.isoformat()]))
        return f"{field}__{op}", value
    if kind == "number":
        path = draw(st.sampled_from(["cloud_cover", "eo__gsd"]))
        op = draw(st.sampled_from([*ORDER_OPS, "in", "range"]))
        number = st.one_of(st.integers(-5, 105), st.floats(-5, 105, allow_nan=False))
        if op == "in":
            return f"properties__{path}__in", draw(
                st.lists(st.sampled_from([10, 15, 30, 30.5, 20]), min_size=1, max_size=3)
            )
        if op == "range":
            return f"properties__{path}__range", sorted([draw(number), draw(number)])
        return f"properties__{path}__{op}", draw(number)
    if kind == "pstring":
        path = draw(st.sampled_from(["tile", "cloud_cover"]))
        op = draw(st.sampled_from(STRING_OPS))
        return f"properties__{path}__{op}", draw(text)
    if kind == "bool":
        return "properties__flag", draw(st.booleans())
    path = draw(st.sampled_from(["flag", "tile", "cloud_cover", "eo__gsd", "missing"]))
    return f"properties__{path}__isnull", draw(st.booleans())


def _value(d: Dataset, field: str, path: list[str]) -> tuple[bool, Any]:
    if field != "properties":
        return True, getattr(d, field)
    node: Any = d.properties
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "str"
    return type(v).__name__


def _as_time(v: Any) -> Any:
    return datetime.fromisoformat(v) if isinstance(v, str) else v


def _matches(d: Dataset, key: str, value: Any) -> bool:
    """An independent reference implementation of one lookup."""
    parts = key.split("__")
    ops = {
        "exact",
        "iexact",
        "contains",
        "icontains",
        "startswith",
        "istartswith",
        "endswith",
        "iendswith",
        "in",
        "gt",
        "gte",
        "lt",
        "lte",
        "range",
        "isnull",
    }
    if len(parts) > 1 and parts[-1] in ops:
        op, body = parts[-1], parts[:-1]
    else:
        op, body = "exact", parts
    field, path = body[0], body[1:]
    present, x = _value(d, field, path)
    if op == "isnull":
        return (x is None) == value
    if field in ("time_start", "time_end"):
        value = [_as_time(v) for v in value] if isinstance(value, list) else _as_time(value)
    if x is None:
        return False
    sample = value[0] if isinstance(value, list) and value else value
    if field == "properties":
        if isinstance(value, list) and not value:
            return False
        if _kind(x) != _kind(sample):
            return False
    if op == "exact":
        return x == value
    if op == "iexact":
        return x.lower() == value.lower()
    if op == "contains":
        return value in x
    if op == "icontains":
        return value.lower() in x.lower()
    if op == "startswith":
        return x.startswith(value)
    if op == "istartswith":
        return x.lower().startswith(value.lower())
    if op == "endswith":
        return x.endswith(value)
    if op == "iendswith":
        return x.lower().endswith(value.lower())
    if op == "in":
        return x in value
    if op == "range":
        return value[0] <= x <= value[1]
    return {"gt": x > value, "gte": x >= value, "lt": x < value, "lte": x <= value}[op]


def _order(d: Dataset) -> tuple[Any, ...]:
    return (d.time_start is None, d.time_start or T0, d.id)


@pytest.fixture
def loaded(db):
    save_datasets(db, ROWS)
    stored = search(db, limit=MAX_LIMIT)
    assert len(stored) == len(ROWS)
    return db, stored


@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(criteria=st.just({}) | st.lists(lookups(), min_size=1, max_size=3).map(dict))
def test_search_equals_brute_force(loaded, criteria: dict[str, Any]) -> None:
    db, stored = loaded
    expected = sorted(
        (d for d in stored if all(_matches(d, k, v) for k, v in criteria.items())), key=_order
    )
    found = search(db, criteria, limit=MAX_LIMIT)
    assert [d.entry_id for d in found] == [d.entry_id for d in expected], criteria
    assert count(db, criteria) == len(expected)


def test_results_carry_fields_and_uris(loaded) -> None:
    db, stored = loaded
    by_entry = {d.entry_id: d for d in ROWS}
    for d in stored:
        original = by_entry[d.entry_id]
        assert (d.collection, d.instrument, d.time_start, d.time_end, d.properties) == (
            original.collection,
            original.instrument,
            original.time_start,
            original.time_end,
            original.properties,
        )
        assert [u.uri for u in d.uris] == [u.uri for u in original.uris]
        assert d.footprint.equals(original.footprint)


def test_django_examples(loaded) -> None:
    db, stored = loaded
    got = search(db, {"collection": "landsat", "properties__cloud_cover__lt": 20}, limit=MAX_LIMIT)
    assert got
    assert all(d.collection == "landsat" and d.properties["cloud_cover"] < 20 for d in got)
    oli = search(db, {"instrument__iexact": "oli"}, limit=MAX_LIMIT)
    assert {d.instrument for d in oli} == {"oli", "OLI"}
    ids = [stored[0].id, stored[3].id]
    assert [d.id for d in search(db, {"id__in": ids})] == sorted(
        ids, key=lambda i: [s.id for s in stored].index(i)
    )
    assert [d.id for d in search(db, {"id": stored[5].id})] == [stored[5].id]


def test_limit_and_offset_page_in_order(loaded) -> None:
    db, stored = loaded
    pages = [search(db, limit=7, offset=o) for o in range(0, len(stored), 7)]
    assert [d.entry_id for page in pages for d in page] == [d.entry_id for d in stored]


BAD_CRITERIA = (
    ({"colection": "x"}, "unknown field 'colection'"),
    ({"instrument__like": "x"}, "unknown operator 'like'"),
    ({"time_start__gte": "yesterday"}, "invalid value for 'time_start__gte'"),
    ({"id": "abc"}, "expected an integer"),
    ({"collection__in": "landsat"}, "takes a list"),
    ({"collection__range": ["a"]}, "takes [low, high]"),
    ({"properties__cloud_cover__lt": [1]}, "properties lookups take"),
    ({"properties": 1}, "expected properties__KEY"),
    ({"time_start__contains": "2020"}, "needs a text field"),
)


def test_bad_criteria_name_the_problem(db) -> None:
    for criteria, message in BAD_CRITERIA:
        with pytest.raises(QueryError) as info:
            search(db, criteria)
        assert message in str(info.value), criteria


def test_unknown_field_lists_valid_fields(db) -> None:
    with pytest.raises(QueryError) as info:
        search(db, {"cloud_cover__lt": 5})
    for field in ("entry_id", "collection", "instrument", "time_start", "properties"):
        assert field in str(info.value)


def test_values_are_bound_not_pasted(db) -> None:
    save_datasets(db, ROWS[:3])
    hostile = "x'; DROP TABLE datasets; --"
    assert search(db, {"collection": hostile}) == []
    assert search(db, {"properties__tile__icontains": hostile}) == []
    assert len(search(db)) == 3
