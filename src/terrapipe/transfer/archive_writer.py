"""Write checked archive members below one folder without ever following a link.

Every folder is created by us and entered with ``O_DIRECTORY | O_NOFOLLOW`` relative to
its parent's descriptor; every file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
in such a folder. So even a member list that slipped past
:func:`~terrapipe.transfer.archive_members.check_members` cannot write through a
symbolic link: the kernel refuses the step. Bytes are counted as they are written (a
header's size can lie), against one byte budget for the whole archive.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from terrapipe.errors import UnsafeArchive
from terrapipe.transfer.archive_members import Member

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1024 * 1024


class ReadFailed(Exception):
    """Reading a member's bytes failed (truncated or corrupt archive); the caller names it."""


def _read(member: Member, step):
    """Run one read step of ``member``; any failure is the archive's (truncated, corrupt)."""
    try:
        return step()
    except Exception as exc:  # tarfile, zipfile, zlib, gzip, lzma, EOFError: all mean corrupt
        raise ReadFailed(f"member {member.name!r}: {type(exc).__name__}: {exc}") from None


class ArchiveWriter:
    """Extract members into ``root`` (an empty folder we made), within ``max_bytes``."""

    def __init__(self, root: Path, max_bytes: int, archive_name: str) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.archive_name = archive_name
        self.written = 0
        # descriptors of the folders on the last path used: [root, root/a, root/a/b, ...]
        self._path: tuple[str, ...] = ()
        self._fds: list[int] = []

    def __enter__(self) -> ArchiveWriter:
        self._fds = [os.open(self.root, _DIR_FLAGS)]
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds, self._path = [], ()

    def _folder(self, parts: tuple[str, ...], member: Member) -> int:
        """A descriptor for folder ``parts`` below root, created as needed, links refused.

        Descriptors of the common prefix with the previous folder are reused (members
        usually come folder by folder); each new step is opened with ``O_NOFOLLOW``.
        """
        keep = 0
        while keep < min(len(parts), len(self._path)) and parts[keep] == self._path[keep]:
            keep += 1
        for fd in self._fds[keep + 1 :]:
            os.close(fd)
        del self._fds[keep + 1 :]
        self._path = parts[:keep]
        for part in parts[keep:]:
            if part in ("", ".", "..") or "/" in part:  # checked before; never step out
                raise UnsafeArchive(f"archive member {member.name!r} has a bad path {part!r}")
            fd = self._fds[-1]
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                raise UnsafeArchive(
                    f"archive member {member.name!r} of {self.archive_name!r} goes through "
                    f"{part!r}, which is not a folder of the archive"
                ) from None
            self._fds.append(child)
            self._path = (*self._path, part)
        return self._fds[-1]

    def write(self, member: Member) -> None:
        """Create one checked member (its folders first)."""
        parts = member.parts
        if member.kind == "dir":
            self._folder(parts, member)
            return
        if member.kind == "hardlink":
            target = Member(member.linkname, "file").parts
            source = os.dup(self._folder(target[:-1], member))
            try:
                parent = self._folder(parts[:-1], member)
                os.link(
                    target[-1],
                    parts[-1],
                    src_dir_fd=source,
                    dst_dir_fd=parent,
                    follow_symlinks=False,
                )
            finally:
                os.close(source)
            return
        parent = self._folder(parts[:-1], member)
        if member.kind == "file":
            self._write_file(member, parent, parts[-1])
        elif member.kind == "symlink":
            os.symlink(member.linkname, parts[-1], dir_fd=parent)

    def _write_file(self, member: Member, parent: int, name: str) -> None:
        mode = (member.mode & 0o755) | 0o600
        try:
            fd = os.open(name, _FILE_FLAGS, mode, dir_fd=parent)
        except FileExistsError:
            raise UnsafeArchive(
                f"archive member {member.name!r} of {self.archive_name!r} appears more than once"
            ) from None
        with os.fdopen(fd, "wb") as out:
            size = 0
            source = _read(member, lambda: member.open())  # type: ignore[misc]
            with source:
                while chunk := _read(member, lambda: source.read(_CHUNK)):
                    size += len(chunk)
                    self.written += len(chunk)
                    if self.written > self.max_bytes:
                        raise UnsafeArchive(
                            f"archive {self.archive_name!r} expands to more than the limit "
                            f"of {self.max_bytes} bytes (at member {member.name!r}); "
                            "raise the limit if you trust it"
                        )
                    out.write(chunk)
            if size != member.size:
                raise ReadFailed(
                    f"member {member.name!r} holds {size} bytes, its header says {member.size}"
                )
            if member.mtime is not None:
                with contextlib.suppress(OverflowError, OSError, ValueError):
                    os.utime(out.fileno(), (member.mtime, member.mtime))
