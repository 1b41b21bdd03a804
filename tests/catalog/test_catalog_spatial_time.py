"""Time overlap edge cases and footprints across the antimeridian or with holes (both DBs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from terrapipe.catalog.dataset import Dataset
from terrapipe.catalog.geometry import footprint_bbox, normalize_footprint, parse_geometry
from terrapipe.catalog.ingest import save_datasets
from terrapipe.catalog.query import count, search
from terrapipe.catalog.timespan import time_window
from terrapipe.errors import QueryError


def _ids(found: list[Dataset]) -> list[str]:
    return [d.entry_id for d in found]


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def timed(db):
    save_datasets(
        db,
        [
            Dataset("instant", time_start=t(10, 12), footprint=box(0, 0, 1, 1)),
            Dataset("span", time_start=t(5), time_end=t(8), footprint=box(0, 0, 1, 1)),
            Dataset("late", time_start=t(20), time_end=t(25), footprint=box(0, 0, 1, 1)),
            Dataset("timeless", footprint=box(0, 0, 1, 1)),
        ],
    )
    return db


TIME_CASES = (
    (None, None, ["span", "instant", "late", "timeless"]),
    ("2024-01-08", "2024-01-09", ["span"]),  # touches the end of span (inclusive)
    ("2024-01-08T00:00:01Z", "2024-01-09", []),  # just after span ends
    ("2024-01-01", "2024-01-05", ["span"]),  # a date as end includes that whole day
    ("2024-01-01", "2024-01-04", []),
    ("2024-01-10", "2024-01-10", ["instant"]),  # one day contains the instant
    ("2024-01-10T12:00:00Z", "2024-01-10T12:00:00Z", ["instant"]),  # zero-length window
    ("2024-01-10T12:00:01Z", None, ["late"]),  # open end
    (None, "2024-01-06", ["span"]),  # open begin
    ("2024-01-06", "2024-01-07", ["span"]),  # window inside span
    ("2024-01-01", "2024-02-01", ["span", "instant", "late"]),  # window contains all
    ("2024-01-10T14:00:00+02:00", "2024-01-10T14:00:00+02:00", ["instant"]),  # = 12:00Z
)


def test_time_overlap(timed) -> None:
    got = {(b, e): _ids(search(timed, begin=b, end=e)) for b, e, _ in TIME_CASES}
    assert got == {(b, e): expected for b, e, expected in TIME_CASES}


def test_relative_window(db) -> None:
    now = datetime.now(UTC)
    save_datasets(
        db,
        [
            Dataset("recent", time_start=now - timedelta(hours=5), footprint=box(0, 0, 1, 1)),
            Dataset("old", time_start=now - timedelta(days=3), footprint=box(0, 0, 1, 1)),
            Dataset(
                "long",
                time_start=now - timedelta(days=30),
                time_end=now - timedelta(hours=1),
                footprint=box(0, 0, 1, 1),
            ),
        ],
    )
    assert _ids(search(db, relative="12h")) == ["long", "recent"]
    assert _ids(search(db, relative="7d")) == ["long", "old", "recent"]
    assert _ids(search(db, relative="2h")) == ["long"]  # long ended 1 h ago
    assert count(db, relative="30m") == 0


BAD_TIMES = (
    ({"begin": "2024-13-01"}, "invalid begin '2024-13-01'"),
    ({"end": "soon"}, "invalid end 'soon'"),
    ({"begin": "2024-02-01", "end": "2024-01-01"}, "is after end"),
    ({"relative": "7x"}, "invalid relative time '7x'"),
    ({"relative": "0d"}, "must be positive"),
    ({"relative": "7d", "begin": "2024-01-01"}, "not both"),
)


def test_bad_time_input(db) -> None:
    for kwargs, message in BAD_TIMES:
        with pytest.raises(QueryError) as info:
            search(db, **kwargs)
        assert message in str(info.value), kwargs


def test_time_window_dates_cover_whole_days() -> None:
    start, stop = time_window("2024-01-31", "2024-01-31")
    assert start == datetime(2024, 1, 31, tzinfo=UTC)
    assert stop == datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)


# --- geometry -------------------------------------------------------------------------

CROSSING = Polygon([(170, -10), (-170, -10), (-170, 10), (170, 10)])  # naive GeoJSON ring
UNWRAPPED = Polygon([(175, 20), (185, 20), (185, 30), (175, 30)])  # longitudes past 180
RING = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (8, 2), (8, 8), (2, 8)]])


def test_antimeridian_footprints_are_split_with_a_crossing_bbox() -> None:
    split = normalize_footprint(CROSSING)
    assert isinstance(split, MultiPolygon) and len(split.geoms) == 2
    assert split.bounds == (-180, -10, 180, 10)
    assert footprint_bbox(split) == (170, -10, -170, 10)
    assert shapely.area(split) == pytest.approx(400)
    other = normalize_footprint(UNWRAPPED)
    assert footprint_bbox(other) == (175, 20, -175, 30)
    assert shapely.area(other) == pytest.approx(100)


@pytest.fixture
def shaped(db):
    save_datasets(
        db,
        [
            Dataset("crossing", time_start=t(1), footprint=CROSSING),
            Dataset("unwrapped", time_start=t(2), footprint=UNWRAPPED),
            Dataset("ring", time_start=t(3), footprint=RING),
            Dataset("plain", time_start=t(4), footprint=box(20, 20, 21, 21)),
        ],
    )
    return db


SPATIAL_CASES = (
    ("-175,-1,-172,1", ["crossing"]),  # west of 180 side
    ("172,-1,175,1", ["crossing"]),  # east side
    ("-169,-1,-160,1", []),  # just outside
    ("178,25,-178,26", ["unwrapped"]),  # query bbox itself crosses the antimeridian
    ("POLYGON ((178 -5, 182 -5, 182 5, 178 5, 178 -5))", ["crossing"]),  # WKT past 180
    ("POINT (5 5)", []),  # inside the hole: bbox candidate, exact test rejects it
    ("POINT (1 1)", ["ring"]),
    ("3,3,7,7", []),  # box within the hole
    ("3,3,9,7", ["ring"]),  # box reaching the ring
    ('{"type": "Point", "coordinates": [20.5, 20.5]}', ["plain"]),
    (
        '{"type": "Feature", "properties": {}, "geometry": {"type": "Point", '
        '"coordinates": [-178, 27]}}',
        ["unwrapped"],
    ),
    ("-180,-90,180,90", ["crossing", "unwrapped", "ring", "plain"]),
)


def test_spatial_search(shaped) -> None:
    got = {
        g: (_ids(search(shaped, geometry=g)), count(shaped, geometry=g)) for g, _ in SPATIAL_CASES
    }
    assert got == {g: (expected, len(expected)) for g, expected in SPATIAL_CASES}


def test_spatial_and_time_and_attributes_combine(shaped) -> None:
    got = search(shaped, {"entry_id__startswith": "c"}, geometry="170,-5,-170,5", end="2024-01-02")
    assert _ids(got) == ["crossing"]
    assert _ids(search(shaped, geometry="170,-5,-170,5", begin="2024-01-02")) == []


BAD_GEOMETRIES = (
    ("POLYGON ((0 0, 1 1", "invalid WKT geometry"),
    ("1,2,3", "invalid WKT geometry"),
    ("a,b,c,d", "invalid WKT geometry"),
    ("0,50,1,-50", "latitudes"),
    ("0,0,200,1", "longitudes"),
    ('{"type": "Polygon"', "invalid GeoJSON"),
    ('{"coordinates": [1, 2]}', "no 'type'"),
    ("", "invalid geometry"),
    ("POLYGON EMPTY", "empty"),
)


def test_bad_geometry(db) -> None:
    for value, message in BAD_GEOMETRIES:
        with pytest.raises(QueryError) as info:
            search(db, geometry=value)
        assert message in str(info.value), value


boxes = st.tuples(
    st.floats(-179, 178), st.floats(-80, 79), st.floats(0.1, 20), st.floats(0.1, 10)
).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))


@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=boxes)
def test_spatial_equals_shapely_reference(shaped, query) -> None:
    """Whatever the box (wrapping past 180 allowed), results equal an exact shapely test."""
    minx, miny, maxx, maxy = query
    stored = search(shaped)
    wrapped = (minx, miny, maxx - 360 if maxx > 180 else maxx, maxy)
    geom = parse_geometry(",".join(str(v) for v in wrapped))
    expected = [d.entry_id for d in stored if d.footprint.intersects(geom)]
    assert _ids(search(shaped, geometry=json.dumps(shapely.geometry.mapping(geom)))) == expected
