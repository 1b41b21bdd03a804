"""Temporary files beside their final name, created with the umask like any other file.

``tempfile.mkstemp`` makes files mode 600 whatever the umask, so a file renamed into place
from it (a ``.flag``, an archive) was unreadable to the group even with umask 022. Here the
kernel applies the umask to 666, as for ``open(path, "w")``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def open_beside(target: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create a new hidden temporary file in ``target``'s folder; returns (fd, path)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{suffix}")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {str(target)!r}")
