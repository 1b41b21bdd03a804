"""DownloadManager over the real catalog (SQLite and PostgreSQL) and a real HTTP server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from transfer_data import seed

from terrapipe.catalog.models import uris_table
from terrapipe.catalog.query import get_dataset
from terrapipe.errors import DownloadError, NoDatasetsFound, SafetyLimitExceeded
from terrapipe.transfer.catalog_source import CatalogSource
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.manager import DownloadManager
from terrapipe.transfer.policy import RetryPolicy, TransferOptions

FAST = TransferOptions(retry=RetryPolicy(attempts=2, backoff_s=0.01), read_timeout_s=5)


def manager(db, tmp_path, directory, **kw) -> DownloadManager:
    return DownloadManager(
        directory,
        source=CatalogSource(db),
        locks=LockFactory(lock_dir=tmp_path / "locks"),
        options=FAST,
        **kw,
    )


def test_downloads_into_time_pattern_folders_and_records_then_skips(db, http_server, tmp_path):
    bodies = seed(db, http_server)
    m = manager(db, tmp_path, str(tmp_path / "dl" / "%Y" / "%m"), collection="s2")
    report = m.download()
    assert report.failed == {} and len(report.downloaded) == 3
    for i, body in enumerate(bodies):
        path = tmp_path / "dl" / "2024" / f"{i + 1:02d}" / f"S2_SCENE_{i}" / f"scene{i}.nc"
        assert path.read_bytes() == body
    with db.begin() as conn:
        recorded = conn.execute(
            sa.select(uris_table.c.local_path).where(uris_table.c.uri.like("%/scene0.nc"))
        ).scalar_one()
    assert recorded.endswith("S2_SCENE_0/scene0.nc")
    requests = len(http_server.state.requests)
    again = manager(db, tmp_path, str(tmp_path / "elsewhere"), collection="s2").download()
    assert sorted(again.skipped) == sorted(report.downloaded) and again.downloaded == {}
    assert len(http_server.state.requests) == requests  # nothing fetched
    assert not (tmp_path / "elsewhere").exists()


def test_corrupted_recorded_file_is_downloaded_again(db, http_server, tmp_path):
    seed(db, http_server, n=1)
    first = manager(db, tmp_path, tmp_path / "dl", entry_id="S2_SCENE_0").download()
    (path,) = first.downloaded.values()
    path.write_bytes(b"corrupt")
    again = manager(db, tmp_path, tmp_path / "dl", entry_id="S2_SCENE_0").download()
    assert list(again.downloaded.values()) == [path] and path.stat().st_size != len(b"corrupt")


def test_folder_contents_alone_are_not_trusted(db, http_server, tmp_path):
    seed(db, http_server, n=1)
    planted = tmp_path / "dl" / "S2_SCENE_0" / "scene0.nc"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"planted")
    report = manager(db, tmp_path, tmp_path / "dl", entry_id="S2_SCENE_0").download()
    assert list(report.downloaded.values()) == [planted] and planted.read_bytes() != b"planted"


def test_safety_limit_refuses_everything(db, http_server, tmp_path):
    seed(db, http_server, n=3)
    m = manager(db, tmp_path, tmp_path / "dl", max_downloads=2, collection="s2")
    with pytest.raises(SafetyLimitExceeded, match="3 datasets match.*limit of 2"):
        m.download()
    assert http_server.state.requests == [] and not (tmp_path / "dl").exists()


def test_no_match_and_geometry_and_time_criteria(db, http_server, tmp_path):
    seed(db, http_server, n=3)
    with pytest.raises(NoDatasetsFound, match="no dataset"):
        manager(db, tmp_path, tmp_path / "dl", collection="landsat").download()
    report = manager(
        db,
        tmp_path,
        tmp_path / "dl",
        geometry="78.1,12.1,78.2,12.2",
        begin="2024-01-01",
        end="2024-03-01",
    ).download()
    assert list(report.downloaded) == [str(get_dataset(db, "S2_SCENE_1").id)]


def test_save_path_adds_a_file_uri(db, http_server, tmp_path):
    seed(db, http_server, n=1)
    report = manager(
        db, tmp_path, tmp_path / "dl", save_path=True, entry_id="S2_SCENE_0"
    ).download()
    (path,) = (p.resolve() for p in report.downloaded.values())
    with db.begin() as conn:
        uris = conn.execute(sa.select(uris_table.c.uri, uris_table.c.local_path)).all()
    assert (path.as_uri(), str(path)) in [tuple(u) for u in uris]


def test_all_uris_failing_is_one_error_per_dataset(db, http_server, tmp_path):
    seed(db, http_server, n=1)
    del http_server.state.files["scene0.nc"]
    with pytest.raises(DownloadError, match="1 of 1 dataset") as info:
        manager(db, tmp_path, tmp_path / "dl", entry_id="S2_SCENE_0").download()
    message = str(info.value)
    assert "missing0.nc" in message and "scene0.nc" in message and "404" in message
    assert not any(p.is_file() for p in (tmp_path / "dl").rglob("*"))


def test_dataset_lock_serialises_work_on_a_dataset(db, http_server, tmp_path):
    import threading
    import time

    from terrapipe.transfer.manager import dataset_lock_key

    seed(db, http_server, n=1)
    ds_id = str(get_dataset(db, "S2_SCENE_0").id)
    locks = LockFactory(lock_dir=tmp_path / "locks")
    results = []
    with locks.dataset_lock(dataset_lock_key(ds_id)):  # another run works on it
        m = manager(db, tmp_path, tmp_path / "dl", entry_id="S2_SCENE_0")
        worker = threading.Thread(target=lambda: results.append(m.download()))
        worker.start()
        time.sleep(0.5)
        assert http_server.state.requests == [] and results == []
    worker.join(10)
    assert list(results[0].downloaded) == [ds_id]


def test_remove_downloaded_and_forget(db, http_server, tmp_path):
    from terrapipe.transfer.ops import remove_downloaded

    seed(db, http_server, n=1)
    report = manager(db, tmp_path, tmp_path / "dl", entry_id="S2_SCENE_0").download()
    ((key, path),) = report.downloaded.items()
    remove_downloaded(path)
    CatalogSource(db).clear_download(key)
    assert not path.exists()
    dataset = get_dataset(db, int(key))
    assert all(u.local_path is None for u in dataset.uris)
