"""Atomic file writes: every writer of files in terrapipe goes through here.

A file is written under a temporary name in the target's own folder (same file system, so
the rename is atomic), flushed to disk, then renamed over the target; on any error the
temporary file is removed and the target is left as it was. A reader therefore sees the
old file or the new one, never half of one, and a crash leaves at most a hidden
``.NAME.*.tmp`` file behind.

The temporary name keeps the target's suffix (``.x.1a2b.tmp.tif``): GDAL, pyogrio and
matplotlib choose a format from it.

Files this module opens itself (:func:`atomic_open`, :func:`atomic_write_bytes`) are
created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and mode 666 less the umask, like any new
file: a link or file planted under the temporary name in a shared folder is never written
through (``tempfile.mkstemp`` would also give mode 600 whatever the umask).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "atomic_dir",
    "atomic_open",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "temp_beside",
    "temps_of",
]

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def temp_beside(target: Path) -> Path:
    """A fresh hidden name in ``target``'s folder that keeps its suffix."""
    target = Path(target)
    return target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.tmp{target.suffix}")


def temps_of(target: Path) -> list[Path]:
    """The files in ``target``'s folder named by :func:`temp_beside` for it: what writers
    of ``target`` left if they died before renaming (only a caller that knows no writer
    is alive may remove them)."""
    target = Path(target)
    name = re.compile(rf"\.{re.escape(target.stem)}\.[0-9a-f]{{8}}\.tmp{re.escape(target.suffix)}")
    try:
        entries = list(target.parent.iterdir())
    except FileNotFoundError:
        return []
    return [e for e in entries if name.fullmatch(e.name) and e.is_file() and not e.is_symlink()]


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block ends without error the file
    written there is flushed and renamed to ``target``, otherwise it is removed.

    The caller (a library that writes by path: rasterio, pyogrio, pyarrow, matplotlib)
    must have closed the file by the end of the block.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(target)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {target}")
        if fsync and tmp.is_file():
            _fsync_file(tmp)
        os.replace(tmp, target)
        if fsync:
            _fsync_dir(target.parent)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(target: Path, *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file opened on a new temporary name beside ``target`` (exclusive
    create, no link followed, umask applied); renamed to ``target`` when the block ends
    without error, removed otherwise."""
    with atomic_path(target, fsync=fsync) as tmp:
        fd = os.open(tmp, _CREATE_FLAGS, 0o666)
        with os.fdopen(fd, "wb") as f:
            yield f


def atomic_write_bytes(target: Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target``."""
    with atomic_open(target, fsync=fsync) as f:
        f.write(data)
    return Path(target)


def atomic_write_text(target: Path, text: str, *, fsync: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically; returns ``target``."""
    return atomic_write_bytes(target, text.encode("utf-8"), fsync=fsync)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` (an
    older folder there is removed only after the new one is in place), on error it is
    removed and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(target).with_suffix("")
    tmp.mkdir()
    old: Path | None = None
    try:
        yield tmp
        if target.exists() or target.is_symlink():
            old = temp_beside(target).with_suffix(".old")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except OSError:
            if old is not None:
                os.replace(old, target)  # put the previous folder back
                old = None
            raise
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
