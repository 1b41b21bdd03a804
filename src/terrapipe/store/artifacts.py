"""Artifact store: files a task wrote, moved into ``<root>/<cache key>/`` only on success.

Tasks write under a staging folder (``<root>/.staging/``); :meth:`ArtifactStore.commit`
renames it into place in one step, so a reader never sees a half-written result and a
crashed or cancelled node leaves nothing behind but staging debris that ``sweep`` removes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class ArtifactStore:
    """Artifacts under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging_root = self.root / ".staging"
        # How paths under the root may be spelled in values (as given, and absolute): string
        # prefixes, so checking a value costs a ``startswith``, not a syscall.
        self.prefixes = _prefixes(self.root)
        self.staging_prefixes = _prefixes(self.staging_root)

    def path_for(self, key: str) -> Path:
        return self.root / key

    def commit(self, staging: Path, key: str) -> Path:
        """Move a finished staging folder to its final place (replacing an older copy)."""
        final = self.path_for(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        trash = None
        if final.exists():
            trash = self.root / ".staging" / f"trash-{uuid.uuid4().hex}"
            os.replace(final, trash)
        os.replace(staging, final)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return final

    def sweep(self, *, older_than: float = 86400.0) -> int:
        """Remove staging leftovers of crashed nodes (untouched for ``older_than`` seconds;
        younger ones may belong to a run in progress). Returns how many were removed."""
        if not self.staging_root.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        for entry in self.staging_root.iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


_NOT_PATHS = frozenset({int, float, bool, type(None)})


def _prefixes(root: Path) -> tuple[str, ...]:
    spelled = {str(root), os.path.abspath(root)}
    return tuple(sorted(p.rstrip(os.sep) + os.sep for p in spelled))


def rewrite_paths(value: Any, old_root: Path, new_root: Path) -> Any:
    """Replace paths under ``old_root`` in task outputs with the same path under ``new_root``.

    A :class:`Path` stays a Path and a string stays a string (``str(ctx.artifact_path(..))``
    is as common as the Path itself)."""
    if isinstance(value, str):
        old = str(old_root)
        if value == old or value.startswith(old.rstrip(os.sep) + os.sep):
            return str(new_root) + value[len(old) :]
        return value
    if isinstance(value, Path):
        try:
            return new_root / value.relative_to(old_root)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: rewrite_paths(v, old_root, new_root) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rewrite_paths(v, old_root, new_root) for v in value]
    return value


def paths_under(value: Any, prefixes: tuple[str, ...]) -> list[str]:
    """Every string or path in ``value`` (nested in lists and dicts) that starts with one of
    ``prefixes`` (see :attr:`ArtifactStore.staging_prefixes`)."""
    found: list[str] = []
    if type(value) in _NOT_PATHS:
        return found
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | os.PathLike):
            text = os.fspath(v)
            if isinstance(text, str) and (text + os.sep).startswith(prefixes):
                found.append(text)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return found


def list_files(folder: Path, *, digest: bool = False) -> list[tuple[Path, int, str | None]]:
    """Every file under ``folder`` with its size, and its content digest (``sha256:HEX``)
    when ``digest`` (for tasks that fingerprint by content), else None."""
    out = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            out.append((p, p.stat().st_size, file_digest(p) if digest else None))
    return sorted(out)


def file_digest(path: Path | str) -> str:
    """``sha256:HEX`` of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def check_files(
    artifact_dir: str, files: Iterable[tuple[str, int, str | None]] | None
) -> str | None:
    """Why a stored result's files can no longer be served, or None when they are intact.

    One ``stat`` per recorded file: a missing file gives ``output missing: NAME``, another
    size (or, where a digest was recorded, other bytes) gives ``output changed: NAME``, NAME
    relative to the artifact folder. Without a record (``None``), only the folder is checked.
    """
    files = list(files) if files is not None else []
    for path, size, digest in files:
        name = _relative_name(path, artifact_dir)
        try:
            st = os.stat(path)
        except OSError:
            return f"output missing: {name}"
        if st.st_size != size:
            return f"output changed: {name}"
        if digest:
            try:
                if file_digest(path) != digest:
                    return f"output changed: {name}"
            except OSError:
                return f"output missing: {name}"
    if not files and not os.path.isdir(artifact_dir):
        return f"output missing: {Path(artifact_dir).name}"
    return None


def _relative_name(path: str, folder: str) -> str:
    prefix = folder.rstrip(os.sep) + os.sep
    return path[len(prefix) :] if path.startswith(prefix) else Path(path).name
