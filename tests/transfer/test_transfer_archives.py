"""unarchive against hostile tar and zip files built here, each beside a victim file.

Every attack archive is written with ``tarfile``/``zipfile`` (TarInfo/ZipInfo of each
kind), extracted through the public ``unarchive``, and must end in ``UnsafeArchive`` or
``InvalidInput`` with the victim outside the destination untouched and nothing left on
disk (no destination, no hidden staging folder).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from terrapipe.errors import InvalidInput, UnsafeArchive
from terrapipe.transfer.ops import unarchive

VICTIM_TEXT = "do not touch"


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A work folder with ``victim.txt`` beside where archives get extracted."""
    (tmp_path / "victim.txt").write_text(VICTIM_TEXT)
    return tmp_path


def _assert_untouched(place: Path, dest: Path) -> None:
    assert (place / "victim.txt").read_text() == VICTIM_TEXT
    assert not dest.exists(), "nothing partial may be kept"
    staging = [p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")]
    assert staging == []


def _info(name: str, kind=tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode="w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tar:
        for info, body in members:
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def _file(name: str, body: bytes = b"pwned") -> tuple[tarfile.TarInfo, bytes]:
    return _info(name), body


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    return _info(name, tarfile.SYMTYPE, target), None


def _attacks(victim: Path) -> dict[str, tuple[list, str]]:
    """name -> (members, what the message says); every one aims at ``victim``."""
    return {
        "dotdot": ([_file("../victim.txt")], "'..'"),
        "dotdot-inside": ([_file("ok/../../victim.txt")], "'..'"),
        "absolute": ([_file(str(victim))], "absolute"),
        "drive-slash": ([_file("C:/victim.txt")], "drive letter"),
        "drive-backslash": ([_file("C:\\victim.txt")], "drive letter"),
        "backslash-dotdot": ([_file("..\\victim.txt")], "backslash"),
        "symlink-outside": ([_link("out", ".."), _file("out/victim.txt")], "outside"),
        "symlink-absolute": (
            [_link("out", str(victim.parent)), _file("out/victim.txt")],
            "outside",
        ),
        "hardlink-outside": (
            [(_info("h", tarfile.LNKTYPE, "../victim.txt"), None), _file("h")],
            "outside",
        ),
        "hardlink-absolute": ([(_info("h", tarfile.LNKTYPE, str(victim)), None)], "outside"),
        # resolves inside, but a ".." in a hard link target is refused outright
        "hardlink-dotdot-inside": (
            [(_info("h", tarfile.LNKTYPE, "x/../first.txt"), None), _file("h")],
            "'..'",
        ),
        # the simple chain: each link alone looks inside, together they lead out
        "chain": ([_link("s", "."), _link("s/t", ".."), _file("s/t/victim.txt")], "symbolic"),
        "chain-in-folder": (
            [(_info("d", tarfile.DIRTYPE), None), _link("d/s", ".."), _link("d/s/t", "..")],
            "symbolic link member 'd/s'",
        ),
        # a link whose target goes through a link defined later in the archive
        "target-through-later-link": (
            [_link("a", "b/victim.txt"), _link("b", ".."), _file("a")],
            "symbolic link member 'b'",
        ),
        "chardev": ([(_info("dev", tarfile.CHRTYPE), None)], "device"),
        "blockdev": ([(_info("dev", tarfile.BLKTYPE), None)], "device"),
        "fifo": ([(_info("fifo", tarfile.FIFOTYPE), None)], "FIFO"),
    }


ATTACKS = list(_attacks(Path("/x/victim.txt")))


@pytest.mark.parametrize("allow", [False, True], ids=["links-refused", "links-allowed"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_tar_attack_is_refused_and_victim_untouched(place, attack, allow):
    members, why = _attacks(place / "victim.txt")[attack]
    bad = _tar(place / "bad.tar.gz", [_file("first.txt", b"ok"), *members])
    dest = place / "dest"
    with pytest.raises(UnsafeArchive, match=why.replace("\\", "\\\\")):
        unarchive(bad, dest, allow_symlinks=allow)
    _assert_untouched(place, dest)


def _path_max_chain(victim: Path) -> list:
    """The CVE-2025-4517 proof of concept: links whose resolution exceeds PATH_MAX.

    Sixteen symbolic links each into a 247-character folder make ``a/b/…/p`` resolve to
    a path of ~4000 characters; one more component passes PATH_MAX, where
    ``os.path.realpath`` (and so tarfile's ``data`` filter) stops resolving and goes on as
    text. ``escape`` then looks inside by text but leads to ``/``, and the last member
    writes through it onto the victim.
    """
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    members: list = []
    path = ""
    for step in steps:
        members.append((_info(os.path.join(path, comp), tarfile.DIRTYPE), None))
        members.append(_link(os.path.join(path, step), comp))
        path = os.path.join(path, comp)
    linkpath = "/".join(steps) + "/" + "l" * 254
    members.append(_link(linkpath, "../" * len(steps)))
    members.append(_link("escape", linkpath + "/.." * (len(steps) + 1)))
    members.append(_file("escape" + str(victim)))
    return members


@pytest.mark.parametrize("allow", [False, True], ids=["links-refused", "links-allowed"])
def test_path_max_symlink_chain_cve_2025_4517_is_refused(place, allow):
    victim = place / "victim.txt"
    bad = _tar(place / "poc.tar", _path_max_chain(victim), mode="w")
    dest = place / "dest"
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        unarchive(bad, dest, allow_symlinks=allow)
    _assert_untouched(place, dest)


def test_links_inside_are_extracted_only_when_allowed(place):
    real = b"band data"
    good = _tar(
        place / "links.tar.gz",
        [
            (_info("ds", tarfile.DIRTYPE), None),
            _file("ds/real.tif", real),
            _link("ds/alias.tif", "real.tif"),
            (_info("ds/hard.tif", tarfile.LNKTYPE, "ds/real.tif"), None),
        ],
    )
    with pytest.raises(UnsafeArchive, match="allow_symlinks"):
        unarchive(good, place / "refused")
    _assert_untouched(place, place / "refused")
    files = unarchive(good, place / "out", allow_symlinks=True)
    ds = place / "out" / "ds"
    assert sorted(p.name for p in files) == ["hard.tif", "real.tif"]
    assert os.readlink(ds / "alias.tif") == "real.tif"
    assert (ds / "alias.tif").read_bytes() == real
    assert os.stat(ds / "hard.tif").st_ino == os.stat(ds / "real.tif").st_ino


def test_hard_link_to_a_later_or_missing_member_is_refused(place):
    bad = _tar(place / "h.tar", [(_info("h", tarfile.LNKTYPE, "later.txt"), None)], "w")
    with pytest.raises(UnsafeArchive, match="not an earlier regular file"):
        unarchive(bad, place / "dest")
    _assert_untouched(place, place / "dest")


def test_default_byte_cap_is_relative_to_the_archive(place, monkeypatch):
    """20 MB of zeros in a ~20 kB tar.gz: over 100x its size, refused before writing."""
    bomb = _tar(place / "bomb.tar.gz", [_file("zeros.bin", bytes(20 * 1024**2))])
    assert bomb.stat().st_size < 100 * 1024
    with pytest.raises(UnsafeArchive, match="limit of"):
        unarchive(bomb, place / "dest")
    _assert_untouched(place, place / "dest")
    # an explicit, trusting ratio lets it through, and the bytes are the real ones
    (path,) = unarchive(bomb, place / "ok", max_ratio=10_000)
    expected = hashlib.sha256(bytes(20 * 1024**2)).hexdigest()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
    # the same through the setting
    monkeypatch.setenv("TERRAPIPE_ARCHIVE_MAX_RATIO", "10000")
    assert unarchive(bomb, place / "ok2") == [place / "ok2" / "zeros.bin"]


def test_caps_come_from_settings(place, monkeypatch):
    many = _tar(place / "many.tar.gz", [_file(f"f{i}.txt", b"x") for i in range(60)])
    monkeypatch.setenv("TERRAPIPE_ARCHIVE_MAX_MEMBERS", "50")
    with pytest.raises(UnsafeArchive, match="more than 50 members"):
        unarchive(many, place / "dest")
    _assert_untouched(place, place / "dest")
    monkeypatch.setenv("TERRAPIPE_ARCHIVE_MAX_MEMBERS", "60")
    monkeypatch.setenv("TERRAPIPE_ARCHIVE_MAX_BYTES", "59")
    with pytest.raises(UnsafeArchive, match="limit of 59 bytes"):
        unarchive(many, place / "dest")
    _assert_untouched(place, place / "dest")
    monkeypatch.setenv("TERRAPIPE_ARCHIVE_MAX_BYTES", "60")
    assert len(unarchive(many, place / "dest")) == 60


def test_member_cap_argument(place):
    many = _tar(place / "many.tar", [_file(f"f{i}.txt", b"x") for i in range(11)], "w")
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        unarchive(many, place / "dest", max_members=10)
    _assert_untouched(place, place / "dest")


def _cut(path: Path) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_truncated_tar_gz_is_a_clear_error_and_nothing_is_kept(place):
    rng = __import__("random").Random(1)
    noise = bytes(rng.getrandbits(8) for _ in range(200_000))
    whole = _tar(place / "scene.tar.gz", [_file(f"b{i}.tif", noise) for i in range(4)])
    cut = _cut(whole)
    dest = place / "dest"
    with pytest.raises(InvalidInput, match=r"cut-scene\.tar\.gz.* truncated or corrupt"):
        unarchive(cut, dest)
    _assert_untouched(place, dest)
    assert len(unarchive(whole, dest)) == 4


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, body in members:
            zf.writestr(info, body)
    return path


def _zip_link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: external_attr carries st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _zip_special(name: str, kind: int) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o644) << 16
    return info, b""


def test_zip_safe_product_round_trip(place):
    """A Sentinel-like SAFE zip extracts with the same bytes and folders."""
    safe = "S2A_MSIL2A_20240101T000000_N0510_R001_T43PGQ_20240101T000000.SAFE"
    body = {f"{safe}/manifest.safe": b"<xml/>", f"{safe}/GRANULE/L2A/IMG_DATA/B04.jp2": b"j" * 5000}
    arc = _zip(place / "s2.zip", [(f"{safe}/", b""), *body.items()])
    files = unarchive(arc, place / "dest")
    assert sorted(str(p.relative_to(place / "dest")) for p in files) == sorted(body)
    for name, data in body.items():
        assert (place / "dest" / name).read_bytes() == data


@pytest.mark.parametrize(
    "members,why",
    [
        ([("../victim.txt", b"pwned")], "'..'"),
        ([("/victim.txt", b"pwned")], "absolute"),
        ([("C:\\victim.txt", b"pwned")], "drive letter"),
        ([("..\\victim.txt", b"pwned")], "backslash"),
        ([_zip_link("out", ".."), ("out/victim.txt", b"pwned")], "outside"),
        ([_zip_link("s", "."), _zip_link("s/t", ".."), ("s/t/victim.txt", b"x")], "symbolic"),
        ([_zip_special("fifo", stat.S_IFIFO)], "FIFO"),
        ([_zip_special("dev", stat.S_IFCHR)], "device"),
    ],
    ids=["dotdot", "absolute", "drive", "backslash", "symlink", "chain", "fifo", "device"],
)
def test_zip_attack_is_refused_and_victim_untouched(place, members, why):
    bad = _zip(place / "bad.zip", [("first.txt", b"ok"), *members])
    with pytest.raises(UnsafeArchive, match=why.replace("\\", "\\\\")):
        unarchive(bad, place / "dest", allow_symlinks=True)
    _assert_untouched(place, place / "dest")


def test_zip_bomb_member_cap_and_truncation(place):
    bomb = _zip(place / "bomb.zip", [("zeros.bin", bytes(20 * 1024**2))])
    with pytest.raises(UnsafeArchive, match="limit of"):
        unarchive(bomb, place / "dest")
    _assert_untouched(place, place / "dest")
    many = _zip(place / "many.zip", [(f"f{i}", b"x") for i in range(11)])
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        unarchive(many, place / "dest", max_members=10)
    rng = __import__("random").Random(2)
    whole = _zip(place / "s1.zip", [("a.tif", bytes(rng.getrandbits(8) for _ in range(100_000)))])
    with pytest.raises(InvalidInput, match=r"cut-s1\.zip.* truncated or corrupt"):
        unarchive(_cut(whole), place / "dest")
    _assert_untouched(place, place / "dest")


def test_zip_whose_header_lies_about_its_size_is_refused(place):
    """Central directory says 10 bytes; the data inflates to 20 MB: refused as corrupt."""
    arc = _zip(place / "liar.zip", [("zeros.bin", bytes(20 * 1024**2))])
    data = bytearray(arc.read_bytes())
    real = (20 * 1024**2).to_bytes(4, "little")
    for at in [i for i in range(len(data)) if data[i : i + 4] == real]:
        data[at : at + 4] = (10).to_bytes(4, "little")  # local header and central directory
    arc.write_bytes(bytes(data))
    assert zipfile.ZipFile(arc).infolist()[0].file_size == 10
    with pytest.raises(InvalidInput, match="liar.zip"):
        unarchive(arc, place / "dest")
    _assert_untouched(place, place / "dest")


def test_existing_destination_gets_new_tops_and_keeps_its_files(place):
    dest = place / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("mine")
    arc = _tar(place / "a.tar.gz", [_file("ds/a.txt", b"a")])
    assert unarchive(arc, dest) == [dest / "ds" / "a.txt"]
    assert (dest / "mine.txt").read_text() == "mine"
    with pytest.raises(InvalidInput, match="already exists"):
        unarchive(arc, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["ds", "mine.txt"]
