"""``copy --time_to_live`` against forged markers; ``.flag`` files honour the umask.

Each forged marker is planted in a real destination folder with victims around it (in the
folder, in its parent, owned by another user); the expiry runs through ``copy`` (what the
CLI calls) or the ``terrapipe copy`` command, and every victim must still be there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transfer_data import seed

from terrapipe.errors import InvalidInput
from terrapipe.transfer.ops import copy, expire_copies

OLD = time.time() - 10 * 86400
OTHER_UID = 65534  # "nobody": as root, chown makes a file another user's
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another uid")


def _record(uid: int | None = None) -> str:
    uid = os.getuid() if uid is None else uid
    return json.dumps({"source": "/x", "uid": uid, "user": "x", "copied_at": OLD, "link": False})


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """``tmp_path/inbox`` with a user file inside and ``tmp_path/victim.txt`` beside it."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "mine.txt").write_text("mine")
    (tmp_path / "victim.txt").write_text("victim")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "new.nc").write_bytes(b"new")
    return folder


def _expire_by_copying(inbox: Path) -> Path:
    return copy(inbox.parent / "data" / "new.nc", inbox, time_to_live=1)


def _victims_intact(inbox: Path) -> None:
    assert (inbox / "mine.txt").read_text() == "mine"
    assert (inbox.parent / "victim.txt").read_text() == "victim"


@pytest.mark.parametrize(
    "marker",
    ["....terrapipe-copy", "...terrapipe-copy", "..terrapipe-copy"],
    ids=["dotdot-is-the-parent", "dot-is-the-folder", "empty-is-the-folder"],
)
def test_marker_with_a_name_that_is_not_a_file_deletes_nothing(inbox, marker):
    (inbox / marker).write_text(_record())
    copied = _expire_by_copying(inbox)
    assert copied.read_bytes() == b"new"
    _victims_intact(inbox)
    assert (inbox / marker).exists()


def test_symlinked_marker_is_not_trusted(inbox, tmp_path):
    forged = tmp_path / "elsewhere.json"
    forged.write_text(_record())  # our own uid, old: would pass every content check
    (inbox / ".mine.txt.terrapipe-copy").symlink_to(forged)
    assert expire_copies(inbox, 1) == []
    _victims_intact(inbox)
    assert forged.exists()


@as_root
def test_marker_owned_by_another_uid_is_not_trusted(inbox):
    theirs = inbox / "theirs.txt"
    theirs.write_text("theirs")
    os.chown(theirs, OTHER_UID, OTHER_UID)
    for name in ("theirs.txt", "mine.txt"):
        marker = inbox / f".{name}.terrapipe-copy"
        marker.write_text(_record())  # claims to be ours
        os.chown(marker, OTHER_UID, OTHER_UID)
    _expire_by_copying(inbox)
    assert theirs.read_text() == "theirs"
    _victims_intact(inbox)


@as_root
def test_our_marker_does_not_delete_a_file_another_user_put_there(inbox):
    theirs = inbox / "theirs.txt"
    theirs.write_text("theirs")
    os.chown(theirs, OTHER_UID, OTHER_UID)
    (inbox / ".theirs.txt.terrapipe-copy").write_text(_record())
    _expire_by_copying(inbox)
    assert theirs.read_text() == "theirs"


def test_expired_copy_through_a_link_removes_the_link_only(inbox, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (inbox / "ds").symlink_to(outside, target_is_directory=True)
    (inbox / ".ds.terrapipe-copy").write_text(_record())
    (inbox / "ds.flag").write_text("{}")
    assert expire_copies(inbox, 1) == [inbox / "ds"]
    assert not (inbox / "ds").is_symlink() and not (inbox / "ds.flag").exists()
    assert not (inbox / ".ds.terrapipe-copy").exists()
    assert (outside / "keep.txt").read_text() == "keep"
    _victims_intact(inbox)


def test_real_expired_copy_is_still_deleted(inbox):
    old = copy(inbox.parent / "data" / "new.nc", inbox / "sub", flag_file=True)
    marker = old.with_name(f".{old.name}.terrapipe-copy")
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "copied_at": OLD}))
    assert expire_copies(inbox / "sub", 1) == [old]
    assert sorted(os.listdir(inbox / "sub")) == []


def test_copy_of_a_dotdot_path_is_refused_not_a_replace_of_the_parent(inbox):
    with pytest.raises(InvalidInput, match="name the file or folder itself"):
        copy(inbox.parent / "data" / "..", inbox / "sub")
    _victims_intact(inbox)


def _terrapipe(*args: str, umask: int) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("terrapipe")
    return subprocess.run(
        [str(exe), *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        umask=umask,
    )


def test_cli_copy_ttl_with_forged_markers_and_flag_mode(db, http_server, tmp_path, cli):
    """``terrapipe copy -f -ttl`` in a subprocess with umask 027 (a group-readable flag)."""
    umask = 0o027
    seed(db, http_server, n=1)
    q = json.dumps({"collection": "s2"})
    code, _, err = cli("download", "-d", str(tmp_path / "dl"), "-q", q)
    assert code == 0, err
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "mine.txt").write_text("mine")
    (tmp_path / "victim.txt").write_text("victim")
    (inbox / "....terrapipe-copy").write_text(_record())
    (inbox / "..terrapipe-copy").write_text(_record())
    got = _terrapipe("copy", "-d", str(inbox), "-q", q, "-f", "-ttl", "1", "--json", umask=umask)
    assert got.returncode == 0, got.stderr
    _victims_intact(inbox)
    (copied,) = json.loads(got.stdout)["copied"].values()
    flag = Path(copied + ".flag")
    assert json.loads(flag.read_text())["entry_id"] == "S2_SCENE_0"
    # what any file created by a process with this umask gets
    probe = subprocess.run(
        [sys.executable, "-c", "import os,sys; open(sys.argv[1], 'w').close()", tmp_path / "p"],
        umask=umask,
        check=True,
    )
    assert probe.returncode == 0
    expected = (tmp_path / "p").stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    assert flag.stat().st_mode & 0o777 == expected
