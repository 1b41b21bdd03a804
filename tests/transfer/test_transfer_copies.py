"""transfer.copies.copy_datasets: the select-and-copy loop behind ``terrapipe copy``,
called from Python (issue 12: the loop left the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transfer_data import seed

from terrapipe.errors import NoDatasetsFound
from terrapipe.transfer.catalog_source import CatalogSource
from terrapipe.transfer.copies import copy_datasets
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.manager import DownloadManager


def test_copy_datasets_copies_downloaded_files_and_reports_the_others(db, http_server, tmp_path):
    bodies = seed(db, http_server, n=3)
    locks = LockFactory(lock_dir=tmp_path / "locks")
    dm = DownloadManager(tmp_path / "dl", source=CatalogSource(db), locks=locks, collection="s2")
    downloaded = dm.download().downloaded
    assert len(downloaded) == 3
    scene0 = next(Path(p) for p in downloaded.values() if Path(p).read_bytes() == bodies[0])
    scene0.unlink()  # recorded in the catalog, gone from disk

    report = copy_datasets(db, {"collection": "s2"}, tmp_path / "out", flag_file=True)
    assert report.not_downloaded == ["S2_SCENE_0"]
    assert sorted(report.copied) == ["S2_SCENE_1", "S2_SCENE_2"]
    copied = Path(report.copied["S2_SCENE_1"])
    assert copied.parent == tmp_path / "out" and copied.read_bytes() == bodies[1]
    assert not copied.is_symlink()
    flag = json.loads(copied.with_name(copied.name + ".flag").read_text())
    assert flag["entry_id"] == "S2_SCENE_1" and flag["collection"] == "s2"

    assert copy_datasets(db, {"collection": "s2"}, tmp_path / "o2", file_type="tif").copied == {}
    with pytest.raises(NoDatasetsFound, match="no dataset matches"):
        copy_datasets(db, {"collection": "nothing-here"}, tmp_path / "o3")
