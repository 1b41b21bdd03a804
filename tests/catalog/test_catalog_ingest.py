"""The write path: bulk upserts, R*Tree/GiST kept in sync, downloaded state kept (both DBs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from shapely.geometry import box

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets
from terrapipe.catalog.models import DatasetRecord, DatasetURIRecord, uris_table
from terrapipe.catalog.query import count, get_dataset, search
from terrapipe.errors import InvalidInput

WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def _ds(entry_id: str, x: float, **kw) -> Dataset:
    return Dataset(entry_id, time_start=WHEN, footprint=box(x, 0, x + 1, 1), **kw)


def test_batches_and_upserts(db) -> None:
    data = [_ds(f"e{i:04d}", i % 300 - 150) for i in range(1200)]
    result = save_datasets(db, data, batch_size=500)
    assert (result.added, result.updated) == (1200, 0)
    again = save_datasets(db, data[:10] + [_ds("new", 10)], batch_size=4)
    assert (again.added, again.updated) == (1, 10)
    assert count(db) == 1201
    assert [d.entry_id for d in search(db, geometry="10.2,0.2,10.4,0.4")] == [
        "e0160",
        "e0460",
        "e0760",
        "e1060",
        "new",
    ]


def test_duplicate_entry_ids_in_one_batch_last_wins(db) -> None:
    result = save_datasets(db, [_ds("same", 0, title="first"), _ds("same", 0, title="second")])
    assert (result.added, result.updated) == (1, 0)
    assert get_dataset(db, "same").title == "second"


def test_moved_footprint_moves_in_the_index(db) -> None:
    save_datasets(db, [_ds("mover", 0)])
    assert count(db, geometry="0.5,0.5,0.6,0.6") == 1
    save_datasets(db, [Dataset("mover", footprint=box(170, 0, 190, 1))])  # now crosses 180
    assert count(db, geometry="0.5,0.5,0.6,0.6") == 0
    assert count(db, geometry="-175,0.2,-174,0.4") == 1
    save_datasets(db, [Dataset("mover", footprint=box(20, 0, 21, 1))])
    assert count(db, geometry="-175,0.2,-174,0.4") == 0 and count(db, geometry="20,0,20.5,1") == 1


def test_orm_inserts_and_deletes_are_indexed(db) -> None:
    from shapely import to_wkb

    with db.session() as session:
        session.add(
            DatasetRecord(
                entry_id="orm",
                footprint=to_wkb(box(5, 5, 6, 6)),
                bbox_west=5,
                bbox_south=5,
                bbox_east=6,
                bbox_north=6,
                properties={},
                uris=[DatasetURIRecord(uri="s3://bucket/orm.tif", role="data")],
            )
        )
    assert [d.entry_id for d in search(db, geometry="5.5,5.5,5.6,5.6")] == ["orm"]
    assert get_dataset(db, "orm").uris[0].uri == "s3://bucket/orm.tif"
    with db.session() as session:
        session.delete(session.scalars(sa.select(DatasetRecord)).one())
    assert count(db, geometry="5.5,5.5,5.6,5.6") == 0
    with db.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(uris_table)).scalar() == 0


def test_reharvest_keeps_downloaded_state(db) -> None:
    uri = DatasetURI("https://x.test/a.tif", size=10)
    save_datasets(db, [_ds("a", 0, uris=(uri, DatasetURI("https://x.test/old.xml", "metadata")))])
    with db.begin() as conn:
        conn.execute(
            sa.update(uris_table)
            .where(uris_table.c.uri == uri.uri)
            .values(local_path="/data/a.tif", checksum="sha256:ab")
        )
    save_datasets(db, [_ds("a", 0, uris=(DatasetURI("https://x.test/a.tif", size=11),))])
    [kept] = get_dataset(db, "a").uris
    assert (kept.size, kept.local_path, kept.checksum) == (11, "/data/a.tif", "sha256:ab")


def test_bad_records_are_rejected_before_writing(db) -> None:
    with pytest.raises(InvalidInput, match="invalid entry_id ''"):
        save_datasets(db, [_ds("ok", 0), _ds("", 1)])
    with pytest.raises(InvalidInput, match="batch_size"):
        save_datasets(db, [], batch_size=0)
    assert count(db) == 0


def test_special_characters_round_trip(db) -> None:
    """Tabs, newlines, backslashes and quotes survive the bulk paths (COPY text on PostGIS)."""
    title = 'tab\there\nnew line \\ back "quoted" \\N é'
    props = {"note": "a\\b\tc\nd", "nested": {"k\\ey": [1, "\\N"]}, "empty": ""}
    uri = DatasetURI("file:///data/odd\tname.tif", name="a\\b")
    save_datasets(db, [_ds("odd\\id\t1", 0, title=title, properties=props, uris=(uri,))])
    got = get_dataset(db, "odd\\id\t1")
    assert (got.title, got.properties, got.uris[0].uri, got.uris[0].name) == (
        title,
        props,
        uri.uri,
        "a\\b",
    )


def test_record_download(db) -> None:
    from terrapipe.catalog import record_download
    from terrapipe.errors import DatasetNotFound

    save_datasets(db, [_ds("dl", 0, uris=(DatasetURI("https://x.test/dl.tif"),))])
    uri_id = get_dataset(db, "dl").uris[0].id
    record_download(db, uri_id, local_path="/data/dl.tif", checksum="md5:00", size=42)
    got = get_dataset(db, "dl").uris[0]
    assert (got.local_path, got.checksum, got.size) == ("/data/dl.tif", "md5:00", 42)
    with pytest.raises(DatasetNotFound):
        record_download(db, 987654, local_path="/x")
    with pytest.raises(InvalidInput, match="invalid local_path"):
        record_download(db, uri_id, local_path="")


def test_properties_encode_alike_on_insert_and_update(db) -> None:
    """Bulk inserts and ORM updates share one JSON encoder: NaN is null, datetimes ISO."""
    props = {"nan": float("nan"), "when": WHEN, 3: "int key", "nested": [1.5, None]}
    expected = {"nan": None, "when": "2024-05-01T00:00:00+00:00", "3": "int key"}
    expected["nested"] = [1.5, None]
    save_datasets(db, [_ds("j", 0, properties=props)])  # bulk insert
    assert get_dataset(db, "j").properties == expected
    save_datasets(db, [_ds("j", 0, title="again", properties=props)])  # ORM update
    got = get_dataset(db, "j")
    assert (got.title, got.properties) == ("again", expected)
    assert count(db, {"properties__when__startswith": "2024-05-01"}) == 1
