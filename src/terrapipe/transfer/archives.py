"""Archives: ``archive`` a file or folder (tar.gz), ``unarchive`` tar and zip archives safely.

``unarchive`` reads every member's header first (tar, tar.gz/bz2/xz, zip) and refuses the
whole archive (:class:`~terrapipe.errors.UnsafeArchive`) for absolute names, drive
letters, ``..``, devices and FIFOs, paths or links through a symbolic link member, links
leading outside, symbolic links unless allowed, more members than allowed, or more bytes
than allowed (the smaller of an absolute cap and a ratio to the archive's own size, both
in settings). It then writes the members itself (:mod:`.archive_writer`: no link is ever
followed, bytes counted as written) into a hidden folder beside the destination, renamed
into place only when all went well. A truncated or corrupt archive is an
:class:`~terrapipe.errors.InvalidInput` naming it; nothing partial is kept. Python's
``tarfile`` extraction filters are not relied on (``data`` is unpatched for
CVE-2025-4517 before 3.11.13).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from terrapipe.errors import InvalidInput, UnsafeArchive
from terrapipe.store.atomic import atomic_open
from terrapipe.transfer.archive_members import Member, check_members
from terrapipe.transfer.archive_writer import ArchiveWriter, ReadFailed

#: below this many bytes the ratio cap does not apply (a tiny archive of small files)
RATIO_FLOOR = 1024**2
_MAX_LINK = 4096


@dataclass(frozen=True)
class Limits:
    """What one archive may hold: members, and bytes (the smaller of two caps)."""

    archive_file: Path
    members: int
    max_bytes: int
    ratio: float
    archive_size: int

    @property
    def bytes(self) -> int:
        return byte_limit(self.archive_size, self.max_bytes, self.ratio)

    def check_declared(self, declared: int) -> None:
        """Refuse before writing anything when the headers already add up to too much."""
        if declared > self.bytes:
            raise UnsafeArchive(
                f"archive {str(self.archive_file)!r} expands to {declared} bytes or more, more "
                f"than the limit of {self.bytes} bytes (the smaller of archive_max_bytes="
                f"{self.max_bytes} and archive_max_ratio={self.ratio:g} times its own "
                f"{self.archive_size} bytes); raise the limit if you trust it"
            )

    def too_many(self) -> UnsafeArchive:
        return UnsafeArchive(
            f"archive {str(self.archive_file)!r} has more than {self.members} members (the "
            "limit, setting archive_max_members); raise it if you trust the archive"
        )


def archive(source: str | Path, out_file: str | Path | None = None) -> Path:
    """Compress a file or folder to ``out_file`` (default ``SOURCE.tar.gz`` beside it)."""
    source = Path(source)
    if not source.exists():
        raise InvalidInput(f"nothing to archive at {str(source)!r}")
    target = Path(out_file) if out_file else source.with_name(source.name + ".tar.gz")
    with atomic_open(target) as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(source, arcname=source.name)
    return target


def _corrupt(archive_file: Path, exc: object) -> InvalidInput:
    return InvalidInput(
        f"archive {str(archive_file)!r} is truncated or corrupt ({exc}); nothing was "
        "extracted: download it again"
    )


def _tar_kind(info: tarfile.TarInfo) -> tuple[str, str]:
    if info.isreg():
        return "file", ""
    if info.isdir():
        return "dir", ""
    if info.issym():
        return "symlink", ""
    if info.islnk():
        return "hardlink", ""
    names = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device"}
    return "special", names.get(info.type, "FIFO" if info.isfifo() else f"type {info.type!r}")


@contextlib.contextmanager
def _tar_members(archive_file: Path, limits: Limits) -> Iterator[list[Member]]:
    try:
        tar = tarfile.open(archive_file, "r:*")  # noqa: SIM115 - closed below
    except Exception as exc:  # tarfile, gzip, zlib, lzma, EOFError: not a readable archive
        raise InvalidInput(
            f"cannot read archive {str(archive_file)!r}: not a tar or zip archive, or "
            f"truncated ({exc})"
        ) from None
    with tar:
        members = []
        declared = 0
        try:
            for info in tar:
                if len(members) >= limits.members:
                    raise limits.too_many()
                kind, detail = _tar_kind(info)
                members.append(
                    Member(
                        info.name,
                        kind,  # type: ignore[arg-type]
                        size=info.size if kind == "file" else 0,
                        linkname=info.linkname,
                        mode=info.mode,
                        mtime=info.mtime,
                        detail=detail,
                        open=lambda info=info: tar.extractfile(info),
                    )
                )
                declared += members[-1].size
                limits.check_declared(declared)  # before reading past a bomb's data
        except UnsafeArchive:
            raise
        except Exception as exc:  # tarfile, gzip, zlib, lzma, EOFError: a broken archive
            raise _corrupt(archive_file, exc) from None
        yield members


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive_file: Path) -> Member:
    mode = info.external_attr >> 16 if info.create_system == 3 else 0  # a Unix st_mode
    try:
        mtime: float | None = time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        mtime = None
    if info.flag_bits & 0x1:
        raise InvalidInput(
            f"archive {str(archive_file)!r}: member {info.filename!r} is encrypted; "
            "decrypt the archive first"
        )
    if info.is_dir() or stat.S_ISDIR(mode):
        return Member(info.filename, "dir")
    if stat.S_ISLNK(mode):
        if info.file_size > _MAX_LINK:
            raise UnsafeArchive(f"archive member {info.filename!r} is a link with a huge target")
        with zf.open(info) as f:
            target = f.read(_MAX_LINK).decode("utf-8", "replace")
        return Member(info.filename, "symlink", linkname=target)
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        kinds = {
            stat.S_IFCHR: "character device",
            stat.S_IFBLK: "block device",
            stat.S_IFIFO: "FIFO",
            stat.S_IFSOCK: "socket",
        }
        return Member(info.filename, "special", detail=kinds.get(stat.S_IFMT(mode), "special"))
    return Member(
        info.filename,
        "file",
        size=info.file_size,
        mode=stat.S_IMODE(mode) or 0o644,
        mtime=mtime,
        open=lambda: zf.open(info),
    )


@contextlib.contextmanager
def _zip_members(archive_file: Path, limits: Limits) -> Iterator[list[Member]]:
    try:
        zf = zipfile.ZipFile(archive_file)  # noqa: SIM115 - closed below
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt(archive_file, exc) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.members:
            raise limits.too_many()
        try:
            members = [_zip_member(zf, info, archive_file) for info in infos]
        except InvalidInput:
            raise
        except Exception as exc:  # zipfile, zlib, EOFError: a broken archive
            raise _corrupt(archive_file, exc) from None
        yield members


def _is_zip(archive_file: Path) -> bool:
    try:
        with open(archive_file, "rb") as f:
            return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError as exc:
        raise InvalidInput(f"cannot read archive {str(archive_file)!r}: {exc}") from None


def byte_limit(archive_size: int, max_bytes: int, max_ratio: float) -> int:
    """The bytes an archive of ``archive_size`` may expand to (pure)."""
    return min(max_bytes, max(int(max_ratio * archive_size), RATIO_FLOOR))


def unarchive(
    archive_file: str | Path,
    destination: str | Path,
    *,
    max_total_size: int | None = None,
    max_ratio: float | None = None,
    max_members: int | None = None,
    allow_symlinks: bool = False,
) -> list[Path]:
    """Extract a tar (any compression) or zip archive into ``destination``, or nothing.

    Limits default to the settings ``archive_max_bytes``, ``archive_max_ratio`` and
    ``archive_max_members``. Symbolic links are refused unless ``allow_symlinks``; even
    then they must lead to a place inside the destination, without passing through
    another link. Returns the paths of the regular files written.
    """
    from terrapipe.settings import get_settings

    archive_file = Path(archive_file)
    destination = Path(os.path.abspath(destination))
    settings = get_settings()
    max_bytes = settings.archive_max_bytes if max_total_size is None else max_total_size
    ratio = settings.archive_max_ratio if max_ratio is None else max_ratio
    count = settings.archive_max_members if max_members is None else max_members
    try:
        size = archive_file.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read archive {str(archive_file)!r}: {exc}") from None
    limits = Limits(archive_file, count, max_bytes, ratio, size)
    reader = _zip_members if _is_zip(archive_file) else _tar_members
    with reader(archive_file, limits) as members:
        check_members(members, allow_symlinks=allow_symlinks)
        limits.check_declared(sum(m.size for m in members))
        return _extract(archive_file, members, destination, limits.bytes)


def _extract(archive_file: Path, members: list[Member], destination: Path, limit: int):
    fresh = not (destination.exists() or destination.is_symlink())
    folder = destination.parent if fresh else destination
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{destination.name}.unarchive-{secrets.token_hex(6)}"
    os.mkdir(tmp, 0o777)
    try:
        try:
            with ArchiveWriter(tmp, limit, str(archive_file)) as writer:
                for m in members:
                    writer.write(m)
        except ReadFailed as exc:
            raise _corrupt(archive_file, exc) from None
        _check_links_resolve_inside(tmp, members)
        if fresh:
            os.rename(tmp, destination)
        else:
            tops = sorted({m.parts[0] for m in members if m.parts})
            for top in tops:
                target = destination / top
                if target.exists() or target.is_symlink():
                    raise InvalidInput(f"{str(target)!r} already exists; not overwriting")
            for top in tops:
                os.rename(tmp / top, destination / top)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = [m for m in members if m.kind in ("file", "hardlink")]
    return [destination.joinpath(*m.parts) for m in files]


def _check_links_resolve_inside(root: Path, members: list[Member]) -> None:
    """Second line: each symbolic link written, resolved on disk, stays below ``root``."""
    real_root = os.path.realpath(root)
    for m in members:
        if m.kind != "symlink":
            continue
        real = os.path.realpath(root.joinpath(*m.parts))
        if os.path.commonpath([real_root, real]) != real_root:
            raise UnsafeArchive(f"archive member {m.name!r} is a link pointing outside")
