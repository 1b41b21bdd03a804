"""store/atomic.py: a reader sees the old file or the new one, never a part; errors leave
nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from terrapipe.store.atomic import atomic_dir, atomic_path, atomic_write_text, temp_beside


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.html"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second é")
    assert target.read_text(encoding="utf-8") == "second é"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_an_error_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "layer.tif"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["layer.tif"]


def test_the_temporary_name_keeps_the_suffix_for_format_detection(tmp_path: Path) -> None:
    tmp = temp_beside(tmp_path / "zones.gpkg")
    assert tmp.parent == tmp_path and tmp.suffix == ".gpkg" and tmp.name.startswith(".zones.")


def test_nothing_written_is_an_error_not_an_empty_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(FileNotFoundError), atomic_path(target):
        pass
    assert not target.exists()


def test_atomic_dir_swaps_folders_and_keeps_the_old_one_on_error(tmp_path: Path) -> None:
    target = tmp_path / "extracted"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise ValueError("bad archive")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extracted"]


def test_atomic_open_honours_the_umask_and_cleans_up_on_error(tmp_path: Path) -> None:
    import os
    import stat

    from terrapipe.store.atomic import atomic_open

    old = os.umask(0o027)
    try:
        with atomic_open(tmp_path / "a.tar.gz") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.tar.gz").stat().st_mode) == 0o666 & ~0o027
    with pytest.raises(OSError), atomic_open(tmp_path / "a.tar.gz") as f:
        f.write(b"half")
        raise OSError("disk full")
    assert (tmp_path / "a.tar.gz").read_bytes() == b"x"
    assert [p.name for p in tmp_path.iterdir()] == ["a.tar.gz"]
