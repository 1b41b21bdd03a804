"""Bulk loads (``save_datasets(..., bulk_load=True)``) on both databases.

Deferred index builds must leave exactly the catalog the incremental path leaves: same
rows, same indexes and constraints, spatial and time search equal to a brute-force
shapely filter, and all of it rolled back when a load fails half-way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from shapely.geometry import Polygon, box

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets
from terrapipe.catalog.models import uris_table
from terrapipe.catalog.query import count, get_dataset, search
from terrapipe.errors import InvalidInput

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _random_datasets(n: int, seed: int, prefix: str = "b") -> list[Dataset]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(-185, 175), rng.uniform(-80, 75)
        w, h = rng.uniform(0.01, 6, 2)
        footprint = box(x, y, x + w, y + h)
        if i % 17 == 0:  # crosses the antimeridian (stored split in two)
            footprint = box(178, y, 183, y + h)
        if i % 23 == 0:  # a hole
            footprint = Polygon(
                [(x, y), (x + 4, y), (x + 4, y + 4), (x, y + 4)],
                [[(x + 1, y + 1), (x + 3, y + 1), (x + 3, y + 3), (x + 1, y + 3)]],
            )
        start = T0 + timedelta(hours=float(rng.uniform(0, 24 * 60)))
        out.append(
            Dataset(
                f"{prefix}{i:05d}",
                title=f"scene {i}",
                collection=("landsat", "sentinel")[i % 2],
                time_start=start,
                time_end=start + timedelta(minutes=1),
                footprint=None if i % 29 == 0 else footprint,
                properties={"n": i},
                uris=(DatasetURI(f"https://x.test/{prefix}{i}.tif", size=i),),
            )
        )
    return out


def _schema(db) -> set[tuple[str, ...]]:
    """Index and foreign key definitions of the catalog tables."""
    with db.begin() as conn:
        if db.is_sqlite:
            rows = conn.exec_driver_sql(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN "
                "('datasets', 'dataset_uris', 'datasets_rtree')"
            )
            fks = conn.exec_driver_sql("SELECT * FROM pragma_foreign_key_list('dataset_uris')")
        else:
            rows = conn.exec_driver_sql(
                "SELECT 'index', indexname, indexdef FROM pg_indexes "
                "WHERE tablename IN ('datasets', 'dataset_uris')"
            )
            fks = conn.exec_driver_sql(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'dataset_uris'::regclass"
            )
        return {tuple(map(str, r)) for r in rows} | {tuple(map(str, r)) for r in fks}


def _brute_force(datasets: list[Dataset], window: Polygon, begin, end) -> list[str]:
    return sorted(
        d.entry_id
        for d in datasets
        if d.footprint is not None
        and _wrapped(d.footprint).intersects(window)
        and d.time_start <= end
        and d.time_end >= begin
    )


def _wrapped(footprint):
    """A footprint as the catalog sees it: crossing 180 means wrapping to -180."""
    from shapely.affinity import translate

    west, _, east, _ = footprint.bounds
    if west < -180:
        return footprint.union(translate(footprint, xoff=360))
    if east > 180:
        return footprint.union(translate(footprint, xoff=-360))
    return footprint


def _rtree_ok(db) -> None:
    if db.is_sqlite:
        with db.begin() as conn:
            assert conn.exec_driver_sql("SELECT rtreecheck('datasets_rtree')").scalar() == "ok"


def test_bulk_load_matches_brute_force_and_keeps_the_schema(db) -> None:
    data = _random_datasets(1500, seed=3)
    before = _schema(db)
    result = save_datasets(db, data, batch_size=400, bulk_load=True)
    assert (result.added, result.updated) == (1500, 0)
    assert _schema(db) == before
    _rtree_ok(db)
    rng = np.random.default_rng(4)
    for _ in range(25):
        x, y = rng.uniform(-180, 170), rng.uniform(-80, 70)
        window = box(x, y, x + 10, y + 8)
        begin = T0 + timedelta(days=float(rng.uniform(0, 50)))
        end = begin + timedelta(days=10)
        found = search(db, geometry=window.wkt, begin=begin, end=end, limit=10_000)
        assert sorted(d.entry_id for d in found) == _brute_force(data, window, begin, end)
    assert count(db, {"collection": "landsat"}) == 750
    got = get_dataset(db, "b00042")
    assert (got.properties, got.uris[0].uri, got.uris[0].size) == (
        {"n": 42},
        data[42].uris[0].uri,
        42,
    )


def test_bulk_load_upserts_what_is_stored_and_within_the_load(db) -> None:
    first = _random_datasets(300, seed=5)
    save_datasets(db, first)
    with db.begin() as conn:  # a downloaded file survives the re-load
        conn.execute(
            sa.update(uris_table)
            .where(uris_table.c.uri == first[7].uris[0].uri)
            .values(local_path="/data/b7.tif")
        )
    moved = [
        Dataset(d.entry_id, title="again", footprint=box(10, 10, 11, 11), uris=d.uris)
        for d in first[:200]
    ]
    fresh = _random_datasets(600, seed=6, prefix="n")
    late_duplicate = Dataset("n00001", title="last wins", footprint=box(50, 50, 51, 51))
    load = [*moved, *fresh, late_duplicate]  # 801 >= 300 stored: deferred indexes
    result = save_datasets(db, load, batch_size=128, bulk_load=True)
    # The late duplicate is an update when its first copy was written in an earlier batch
    # (SQLite), or merged into that copy when both fall into one chunk of the COPY stream.
    assert result.added == 600 and result.updated in (200, 201)
    assert count(db) == 900
    _rtree_ok(db)
    assert count(db, geometry="10.2,10.2,10.8,10.8") == 200
    assert [d.entry_id for d in search(db, geometry="50.5,50.5,50.6,50.6")] == ["n00001"]
    assert get_dataset(db, "n00001").title == "last wins"
    assert get_dataset(db, first[7].entry_id).uris[0].local_path == "/data/b7.tif"


def test_bulk_load_of_an_iterator_or_a_small_load_keeps_indexes_incremental(db) -> None:
    save_datasets(db, _random_datasets(200, seed=7))
    before = _schema(db)
    small = _random_datasets(50, seed=8, prefix="s")
    assert save_datasets(db, small, bulk_load=True).added == 50
    streamed = _random_datasets(300, seed=9, prefix="g")
    assert save_datasets(db, iter(streamed), batch_size=64, bulk_load=True).added == 300
    assert _schema(db) == before
    _rtree_ok(db)
    window = box(-180, -90, 180, 90)
    everything = search(db, geometry=window.wkt, limit=10_000)
    assert len(everything) == sum(d.footprint is not None for d in [*small, *streamed]) + sum(
        d.footprint is not None for d in _random_datasets(200, seed=7)
    )


def test_failed_bulk_load_leaves_nothing_and_the_indexes_in_place(db) -> None:
    save_datasets(db, _random_datasets(20, seed=10, prefix="keep"))
    before = _schema(db)
    load = [*_random_datasets(500, seed=11), Dataset("")]  # bad entry in the last batch
    with pytest.raises(InvalidInput, match="invalid entry_id"):
        save_datasets(db, load, batch_size=100, bulk_load=True)
    assert count(db) == 20
    assert _schema(db) == before
    _rtree_ok(db)
    assert count(db, geometry="-180,-90,180,90") == sum(
        d.footprint is not None for d in _random_datasets(20, seed=10, prefix="keep")
    )


def test_sqlite_falls_back_to_row_inserts_when_shadow_tables_are_read_only(
    tmp_path, monkeypatch, caplog
) -> None:
    """Where the packed build cannot write (defensive mode), the R*Tree is still complete."""
    from terrapipe.catalog.load import rtree_pack
    from terrapipe.errors import StoreError
    from terrapipe.store.db import Database

    def refuse(*_args, **_kwargs):
        raise StoreError("shadow tables are read-only")

    monkeypatch.setattr(rtree_pack, "rebuild", refuse)
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    data = _random_datasets(300, seed=12)
    save_datasets(db, data, bulk_load=True)
    _rtree_ok(db)
    assert "inserting the boxes one by one" in caplog.text
    window = box(-180, -90, 180, 90)
    assert len(search(db, geometry=window.wkt, limit=1000)) == sum(
        d.footprint is not None for d in data
    )
    db.dispose()


@pytest.mark.parametrize("bulk_load", [False, True])
def test_values_postgres_refuses_are_bad_input(db, bulk_load) -> None:
    """Too long for its column, or a NUL character: InvalidInput naming the column."""
    if db.is_sqlite:
        pytest.skip("SQLite stores both as they are")
    good = _random_datasets(30, seed=13)
    for bad, column in ((Dataset("x" * 600), "entry_id"), (Dataset("n", title="a\x00b"), "title")):
        with pytest.raises(InvalidInput, match=f"refused by the database.*column {column}"):
            save_datasets(db, [*good, bad], bulk_load=bulk_load)
        assert count(db) == 0
