"""tar.gz archives: ``archive`` a file or folder, ``unarchive`` only archives proven safe.

``unarchive`` inspects every member *before* extracting anything and refuses the whole
archive (:class:`~terrapipe.errors.UnsafeArchive`) for: absolute names, ``..`` components,
symbolic or hard links pointing outside the target, devices and FIFOs, or a total
uncompressed size over the limit. Extraction then goes to a temporary folder that is
renamed into place, with Python's ``data`` filter as a second line of defence.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from terrapipe.errors import InvalidInput, UnsafeArchive

DEFAULT_MAX_TOTAL_SIZE = 10 * 1024**3


def archive(source: str | Path, out_file: str | Path | None = None) -> Path:
    """Compress a file or folder to ``out_file`` (default ``SOURCE.tar.gz`` beside it)."""
    source = Path(source)
    if not source.exists():
        raise InvalidInput(f"nothing to archive at {str(source)!r}")
    target = Path(out_file) if out_file else source.with_name(source.name + ".tar.gz")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(source, arcname=source.name)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _is_inside(name: str) -> bool:
    norm = posixpath.normpath(name)
    return not (norm.startswith("/") or norm == ".." or norm.startswith("../"))


def check_members(members: list[tarfile.TarInfo], *, max_total_size: int) -> None:
    """Raise UnsafeArchive naming the first unsafe member (pure: no extraction)."""
    total = 0
    for m in members:
        name = m.name
        if name.startswith("/") or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
            raise UnsafeArchive(f"archive member {name!r} has an absolute path")
        if ".." in Path(name).parts or ".." in name.split("/"):
            raise UnsafeArchive(f"archive member {name!r} contains '..'")
        if m.issym():
            target = posixpath.join(posixpath.dirname(name), m.linkname)
            if m.linkname.startswith("/") or not _is_inside(target):
                raise UnsafeArchive(
                    f"archive member {name!r} is a link pointing outside: {m.linkname!r}"
                )
        elif m.islnk():
            if m.linkname.startswith("/") or not _is_inside(m.linkname):
                raise UnsafeArchive(
                    f"archive member {name!r} is a hard link pointing outside: {m.linkname!r}"
                )
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchive(f"archive member {name!r} is a device or FIFO")
        total += max(m.size, 0)
        if total > max_total_size:
            raise UnsafeArchive(f"archive expands to more than the limit of {max_total_size} bytes")


def unarchive(
    archive_file: str | Path,
    destination: str | Path,
    *,
    max_total_size: int = DEFAULT_MAX_TOTAL_SIZE,
) -> list[Path]:
    """Extract a tar(.gz) archive into ``destination`` after checking every member."""
    archive_file, destination = Path(archive_file), Path(destination)
    try:
        tar = tarfile.open(archive_file, "r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise InvalidInput(f"cannot read archive {str(archive_file)!r}: {exc}") from None
    with tar:
        members = tar.getmembers()
        check_members(members, max_total_size=max_total_size)
        destination.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".unarchive.", dir=destination))
        try:
            tar.extractall(tmp, filter="data")
            tops = sorted({Path(m.name).parts[0] for m in members if Path(m.name).parts})
            for top in tops:
                target = destination / top
                if target.exists() or target.is_symlink():
                    raise InvalidInput(f"{str(target)!r} already exists; not overwriting")
            for top in tops:
                os.replace(tmp / top, destination / top)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [destination / m.name for m in members if m.isfile()]
