"""Artifact store: files a task wrote, moved into ``<root>/<cache key>/`` only on success.

Tasks write under a staging folder (``<root>/.staging/``); :meth:`ArtifactStore.commit`
renames it into place in one step, so a reader never sees a half-written result and a
crashed or cancelled node leaves nothing behind but staging debris that ``sweep`` removes.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any


class ArtifactStore:
    """Artifacts under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging_root = self.root / ".staging"

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


def rewrite_paths(value: Any, old_root: Path, new_root: Path) -> Any:
    """Replace paths under ``old_root`` in task outputs with the same path under ``new_root``."""
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


def list_files(folder: Path) -> list[tuple[Path, int]]:
    """Every file under ``folder`` with its size."""
    out = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(root) / name
            out.append((p, p.stat().st_size))
    return sorted(out)
