"""What a database would refuse is a QueryError naming the criterion (issue 10, item 8).

NUL bytes, integers beyond 64 bits, thousands of criteria and ``__in`` lists beyond
PostgreSQL's 65,535 parameters, through the public search API and ``catalog search``, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import box

from terrapipe.catalog import Dataset, count, get_dataset, save_datasets, search
from terrapipe.errors import DatasetNotFound, InvalidInput, QueryError

BIG = 2**70
DAY0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def stored(db) -> list[Dataset]:
    datasets = [
        Dataset(
            entry_id=f"scene-{i:03d}",
            title=f"Scene {i}",
            collection="c",
            time_start=DAY0 + timedelta(days=i),
            footprint=box(i, 0, i + 1, 1),
            properties={"n": i, "tile": f"T{i:03d}", "flag": i % 2 == 0, "k0": i},
        )
        for i in range(30)
    ]
    save_datasets(db, datasets)
    return datasets


REFUSED = [
    ({"properties__a\x00b": 1}, "properties__a\\x00b", "NUL byte"),
    ({"title": "a\x00b"}, "'title'", "NUL byte"),
    ({"properties__tile__startswith": "T\x00"}, "properties__tile__startswith", "NUL byte"),
    ({"id": BIG}, "'id'", "64 bits"),
    ({"id__in": [1, -BIG]}, "'id__in'", "64 bits"),
    ({"properties__n__gt": BIG}, "properties__n__gt", "64 bits"),
    ({f"properties__k{i}": i for i in range(2000)}, "too many criteria (2000)", "at most"),
]


@pytest.mark.parametrize(("criteria", "names", "reason"), REFUSED)
def test_refused_criteria_are_query_errors(db, stored, criteria, names, reason) -> None:
    for call in (search, count):
        with pytest.raises(QueryError) as info:
            call(db, criteria)
        message = str(info.value)
        assert names in message and reason in message
        assert "SELECT" not in message and "\n" not in message


def test_get_dataset_refuses_nul_and_huge_ids(db, stored) -> None:
    with pytest.raises(InvalidInput) as info:
        get_dataset(db, "scene\x00")
    assert "NUL" in str(info.value)
    with pytest.raises(DatasetNotFound):
        get_dataset(db, str(BIG))
    with pytest.raises(DatasetNotFound):
        get_dataset(db, BIG)


def test_in_lists_beyond_the_parameter_limit(db, stored) -> None:
    wanted = {3, 17, 29}
    ids = {d.entry_id: d for d in search(db, limit=1000)}
    real_ids = [ids[f"scene-{i:03d}"].id for i in sorted(wanted)]
    noise = list(range(10**6, 10**6 + 70_000))
    expected = {f"scene-{i:03d}" for i in wanted}

    def found(criteria: dict) -> set[str]:
        return {d.entry_id for d in search(db, criteria, limit=1000)}

    assert found({"id__in": noise + real_ids}) == expected
    assert found({"entry_id__in": [f"x{i}" for i in noise] + sorted(expected)}) == expected
    assert found({"properties__n__in": [float(n) for n in noise] + sorted(wanted)}) == expected
    tiles = [f"T{i:03d}" for i in sorted(wanted)]
    assert found({"properties__tile__in": [f"N{i}" for i in noise] + tiles}) == expected
    times = [(DAY0 + timedelta(days=i)).isoformat() for i in sorted(wanted)]
    far = [(DAY0 - timedelta(minutes=m)).isoformat() for m in range(1, 70_001)]
    assert found({"time_start__in": far + times}) == expected
    evens = {d.entry_id for d in stored if d.properties["flag"]}
    assert found({"properties__flag__in": [True] * 70_000}) == evens
    assert found({"id__in": []}) == set()
    assert count(db, {"id__in": noise}) == 0


def test_most_criteria_still_work(db, stored) -> None:
    """200 criteria (the limit), each a range, plus time and geometry: one match."""
    criteria = {f"properties__k{j}__range": [-1, 100] for j in range(1, 200)}
    criteria["properties__k0__range"] = [5, 5]
    assert count(db, {"properties__k0__range": [5, 5]}) == 1
    # k1..k199 are absent from every dataset, so nothing matches; the query still runs.
    assert search(db, criteria, begin="2024-01-01", geometry="0,0,40,1") == []
    same = {"properties__k0__gte": 5, "properties__n__lte": 5, "entry_id__startswith": "scene"}
    assert [d.entry_id for d in search(db, same)] == ["scene-005"]


CLI_REFUSED = [
    ('{"title": "a\\u0000b"}', "'title'", "NUL byte"),
    ('{"properties__a\\u0000b": 1}', "properties__a\\x00b", "NUL byte"),
    ('{"id": 123456789012345678901234567890}', "'id'", "64 bits"),
    (json.dumps({f"properties__k{i}": i for i in range(2000)}), "too many criteria", "200"),
]


@pytest.mark.parametrize(("query", "names", "reason"), CLI_REFUSED)
def test_cli_search_refusals_exit_2(cli, stored, query, names, reason) -> None:
    code, out, err = cli("catalog", "search", "-q", query)
    assert (code, out) == (2, "")
    assert names in err and reason in err
    assert "Traceback" not in err and "SELECT" not in err


def test_cli_search_with_a_huge_in_list(cli, stored) -> None:
    query = json.dumps({"properties__n__in": list(range(100, 70_100)) + [4, 8]})
    code, out, err = cli("catalog", "search", "-q", query, "--json")
    assert code == 0, err
    assert sorted(d["entry_id"] for d in json.loads(out)) == ["scene-004", "scene-008"]
