"""Who is running a run: host, pid and process start time, and whether that process lives.

A run executed in-process records its owner when it starts. A reader that finds the run
still ``running`` can then tell a live run from one whose process was killed (``kill -9``,
a crash, a reboot): on the same host, a pid that is gone, or reused by a process that
started at another time, means the run is interrupted. Runs owned by another host are
never judged from here (their host may be fine).

The start time is Linux's ``/proc/<pid>/stat`` start tick prefixed with the boot id, so a
pid reused after a reboot is told apart too. Elsewhere only the pid is checked.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class Owner:
    """The process that executes a run."""

    host: str
    pid: int
    started: str | None  # an opaque token: equal iff the same process (None: unknown)


def hostname() -> str:
    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """An opaque token for when process ``pid`` started, or None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces: split after it
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        status, ticks = fields[0], fields[19]  # fields 3 and 22 of the whole line
    except IndexError:
        return None
    if status in ("Z", "X"):
        return None  # a zombie has finished: nothing of it runs any more
    try:
        boot = _BOOT_ID.read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}:{ticks}"


def current_owner() -> Owner:
    """This process as a run owner (read once per process: a fork gets its own)."""
    return _owner_of(os.getpid())


@functools.lru_cache(maxsize=4)
def _owner_of(pid: int) -> Owner:
    return Owner(host=hostname(), pid=pid, started=process_start(pid))


def pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # somebody else's process: alive
    return True


def owner_gone(owner: Owner, *, host: str | None = None) -> bool:
    """True when ``owner`` ran on this host and its process no longer exists (its pid is
    gone, or now belongs to a process started at another time). False when it may live,
    including every owner on another host."""
    if owner.host != (host or hostname()):
        return False
    if owner.pid == os.getpid():
        return owner.started is not None and owner.started != process_start(owner.pid)
    if not pid_exists(owner.pid):
        return True
    if owner.started is None:
        return False
    return process_start(owner.pid) != owner.started  # None: a zombie, or gone meanwhile
