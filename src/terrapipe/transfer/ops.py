"""Dataset file operations: copy (with link, flag file and TTL cleanup), remove, publish.

``crop`` (:mod:`.crop`), ``archive``/``unarchive`` (:mod:`.archives`) are re-exported here.
Every output is written to a temporary name in its final folder and renamed when complete.

Copies: each copy ``NAME`` in a destination folder gets a hidden marker
``.NAME.terrapipe-copy`` (JSON: source, user id, time). ``time_to_live`` cleanup deletes
only copies made by this user more than that many days ago (with their marker and
``.flag``). What the marker *says* is not proof: the marker must be a regular file (not a
link) owned by this process's uid, ``NAME`` must be a plain file name (not ``.``, ``..``,
empty, or with a separator), and the copy itself must be this user's, directly in the
folder; links are removed, never followed. Other files in the folder are never touched.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import posixpath
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from terrapipe.errors import InvalidInput, PublishError
from terrapipe.store.atomic import atomic_path, atomic_write_text
from terrapipe.transfer.archives import archive, unarchive
from terrapipe.transfer.crop import crop
from terrapipe.transfer.secrets import Secret, reveal, scrub_text
from terrapipe.transfer.ssh import ssh_client

__all__ = [
    "LocalPublishTarget",
    "SftpPublishTarget",
    "archive",
    "copy",
    "crop",
    "expire_copies",
    "publish",
    "remove_downloaded",
    "unarchive",
]

MARKER_SUFFIX = ".terrapipe-copy"


def _marker(target: Path) -> Path:
    return target.with_name(f".{target.name}{MARKER_SUFFIX}")


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def remove_downloaded(path: str | Path) -> list[Path]:
    """Delete a downloaded file (or dataset folder), its ``.part``, and the folder if empty."""
    path = Path(path)
    removed = []
    for candidate in (path, path.with_name(path.name + ".part")):
        if candidate.exists() or candidate.is_symlink():
            _remove(candidate)
            removed.append(candidate)
    parent = path.parent
    with contextlib.suppress(OSError):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    return removed


def copy(
    source: str | Path,
    destination: str | Path,
    *,
    link: bool = False,
    flag_file: bool = False,
    metadata: dict[str, Any] | None = None,
    time_to_live: float | None = None,
) -> Path:
    """Copy (or symlink) a file or folder into ``destination``; returns the new path."""
    source, destination = Path(source), Path(destination)
    if not source.exists():
        raise InvalidInput(f"nothing to copy at {str(source)!r}")
    if source.name in ("", ".", ".."):
        raise InvalidInput(f"cannot copy {str(source)!r}: name the file or folder itself")
    if time_to_live is not None and time_to_live < 0:
        raise InvalidInput(f"invalid time_to_live {time_to_live!r}: expected days >= 0")
    destination.mkdir(parents=True, exist_ok=True)
    if time_to_live is not None:
        expire_copies(destination, time_to_live)
    target = destination / source.name
    with atomic_path(target) as tmp:
        if link:
            os.symlink(source.resolve(), tmp)
        elif source.is_dir():
            shutil.copytree(source, tmp, symlinks=True)
        else:
            shutil.copy2(source, tmp)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
    record = {
        "source": str(source.resolve()),
        "uid": os.getuid(),
        "user": getpass.getuser(),
        "copied_at": time.time(),
        "link": link,
    }
    atomic_write_text(_marker(target), json.dumps(record))
    if flag_file:
        flag = {**(metadata or {}), "source": record["source"], "copied_at": record["copied_at"]}
        atomic_write_text(target.with_name(target.name + ".flag"), json.dumps(flag, default=str))
    return target


def _copy_name(marker_name: str) -> str | None:
    """The copy a marker file name stands for, or None if it could name anything else."""
    if not (marker_name.startswith(".") and marker_name.endswith(MARKER_SUFFIX)):
        return None
    name = marker_name[1 : -len(MARKER_SUFFIX)]
    if name in ("", ".", "..") or any(c in name for c in ("/", "\\", "\x00")):
        return None
    return name


def _read_own_marker(folder_fd: int, marker_name: str) -> dict | None:
    """The marker's record if it is a regular file owned by this uid (never via a link)."""
    try:
        fd = os.open(marker_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError:  # a symbolic link (ELOOP), gone, unreadable
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_size > 1024**2:
            return None
        try:
            record = json.loads(f.read())
        except ValueError:
            return None
    return record if isinstance(record, dict) else None


def _remove_own_entry(folder_fd: int, name: str) -> bool:
    """Delete ``name`` directly in the folder if this uid owns it; a link is only unlinked."""
    try:
        st = os.lstat(name, dir_fd=folder_fd)
    except FileNotFoundError:
        return False
    if st.st_uid != os.getuid():
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=folder_fd)  # fd-based: does not follow links inside
    else:
        os.unlink(name, dir_fd=folder_fd)
    return True


def expire_copies(destination: str | Path, time_to_live: float) -> list[Path]:
    """Delete this user's copies in ``destination`` older than ``time_to_live`` days.

    Only entries directly inside ``destination`` are deleted, found through markers this
    uid owns (see the module docstring); anything else is left in place.
    """
    destination = Path(destination)
    limit = time.time() - time_to_live * 86400
    removed = []
    folder_fd = os.open(destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for marker_name in sorted(os.listdir(folder_fd)):
            name = _copy_name(marker_name)
            if name is None:
                continue
            record = _read_own_marker(folder_fd, marker_name)
            if record is None or record.get("uid") != os.getuid():
                continue
            try:
                if float(record.get("copied_at", limit)) >= limit:
                    continue
            except (TypeError, ValueError):
                continue
            if _remove_own_entry(folder_fd, name):
                removed.append(destination / name)
            _remove_own_entry(folder_fd, name + ".flag")
            _remove_own_entry(folder_fd, marker_name)
    finally:
        os.close(folder_fd)
    return removed


@dataclass(frozen=True)
class LocalPublishTarget:
    """A folder served at ``url_prefix`` (e.g. by a web server)."""

    folder: Path
    url_prefix: str


@dataclass(frozen=True)
class SftpPublishTarget:
    """A remote folder reached over SFTP, served at ``url_prefix``."""

    host: str
    root: str
    url_prefix: str
    username: str
    password: Secret | None = None
    port: int = 22
    known_hosts: str | None = None
    accept_unknown_host_keys: bool = False  # explicit per target (provider settings)


def _url(prefix: str, relative: str) -> str:
    return prefix.rstrip("/") + "/" + quote(relative.lstrip("/"))


def _relative(path: Path, relative_to: str | Path | None) -> str:
    if relative_to is None:
        return path.name
    try:
        return path.resolve().relative_to(Path(relative_to).resolve()).as_posix()
    except ValueError:
        raise InvalidInput(f"{str(path)!r} is not inside {str(relative_to)!r}") from None


def publish(
    path: str | Path,
    target: LocalPublishTarget | SftpPublishTarget,
    *,
    relative_to: str | Path | None = None,
) -> str:
    """Publish a file or folder to the target (keeping its path below ``relative_to``)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"nothing to publish at {str(path)!r}")
    relative = _relative(path, relative_to)
    if isinstance(target, LocalPublishTarget):
        dest = Path(target.folder) / relative
        copy(path, dest.parent)
        _remove(_marker(dest))
        return _url(target.url_prefix, relative)
    if isinstance(target, SftpPublishTarget):
        _publish_sftp(path, target, relative)
        return _url(target.url_prefix, relative)
    raise InvalidInput(f"unknown publish target {type(target).__name__}")


def _publish_sftp(path: Path, target: SftpPublishTarget, relative: str) -> None:
    import paramiko

    client = ssh_client(
        target.known_hosts, accept_unknown_host_keys=target.accept_unknown_host_keys
    )
    try:
        client.connect(
            target.host,
            target.port,
            username=target.username,
            password=reveal(target.password),
            timeout=30,
            look_for_keys=False,
            allow_agent=False,
        )
        sftp = client.open_sftp()
        remote = posixpath.join(target.root, relative)
        _sftp_makedirs(sftp, posixpath.dirname(remote))
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            dest = (
                remote
                if path.is_file()
                else posixpath.join(remote, file.relative_to(path).as_posix())
            )
            _sftp_makedirs(sftp, posixpath.dirname(dest))
            tmp = posixpath.join(posixpath.dirname(dest), f".{posixpath.basename(dest)}.tmp")
            sftp.put(str(file), tmp)
            sftp.posix_rename(tmp, dest)
    except (paramiko.SSHException, OSError) as exc:
        message = scrub_text(str(exc), (target.password,))
        raise PublishError(f"publishing {path.name!r} to {target.host} failed: {message}") from None
    finally:
        client.close()


def _sftp_makedirs(sftp, folder: str) -> None:
    parts = [p for p in folder.split("/") if p]
    current = "/" if folder.startswith("/") else ""
    for part in parts:
        current = posixpath.join(current, part) if current else part
        try:
            sftp.stat(current)
        except FileNotFoundError:
            sftp.mkdir(current)
