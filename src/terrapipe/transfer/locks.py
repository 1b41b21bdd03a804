"""Counting semaphores across threads, processes and machines, and per-dataset locks.

- :class:`RedisSemaphore` (when a Redis URL is given): a sorted set of holders scored by the
  end of their lease, updated by Lua scripts using the server's clock. A holder renews its
  lease from a background thread while it works; a crashed holder stops renewing and its
  slot is free once the lease ends.
- :class:`FileSemaphore` otherwise: ``limit`` lock files under ``$TERRAPIPE_HOME/locks``
  held with ``flock`` (the kernel frees them when a process dies), so the limit holds
  between threads and between processes of one machine.

:func:`provider_semaphore` and :func:`dataset_lock` pick the implementation.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from terrapipe.errors import InvalidInput, LockTimeout, LockUnavailable

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
DEFAULT_PREFIX = "terrapipe:"

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
  return 1
end
return 0
"""
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) < now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""


class Lease(Protocol):
    """A held slot; ``release()`` gives it back (idempotent)."""

    def release(self) -> None: ...


class Semaphore(Protocol):
    """A counting semaphore: ``acquire()`` returns a lease or raises LockTimeout."""

    name: str
    limit: int

    def acquire(self, timeout: float | None = None) -> Lease: ...


@contextlib.contextmanager
def hold(semaphore: Semaphore, timeout: float | None = None) -> Iterator[Lease]:
    """Hold one slot of ``semaphore`` for the duration of the block."""
    lease = semaphore.acquire(timeout)
    try:
        yield lease
    finally:
        lease.release()


def _check_limit(name: str, limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidInput(f"invalid semaphore limit {limit!r} for {name!r}: expected >= 1")


def _poll(try_once, name: str, timeout: float | None):
    """Call ``try_once`` until it returns a lease, sleeping a little longer each time."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        lease = try_once()
        if lease is not None:
            return lease
        if deadline is not None and time.monotonic() >= deadline:
            raise LockTimeout(f"no free slot of {name!r} within {timeout} s")
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 1.5, 0.2)


class _FileLease:
    def __init__(self, sem: FileSemaphore, index: int) -> None:
        self._sem: FileSemaphore | None = sem
        self._index = index

    def release(self) -> None:
        sem, self._sem = self._sem, None
        if sem is not None:
            sem._release(self._index)


class FileSemaphore:
    """``limit`` flock'ed files in ``directory``: a limit shared by threads and processes.

    Inside one process a condition hands slots to waiting threads without polling; each
    slot file is opened once and locked with ``flock`` (freed by the kernel if we die).
    """

    def __init__(self, name: str, limit: int, directory: str | Path) -> None:
        _check_limit(name, limit)
        self.name, self.limit = name, limit
        digest = hashlib.sha256(name.encode()).hexdigest()[:24]
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._paths = [self.directory / f"{digest}.{i}.lock" for i in range(limit)]
        self._fds: list[int | None] = [None] * limit
        self._free = list(range(limit))  # slots no thread of this process holds
        self._cond = threading.Condition()

    def _try_slot(self, index: int) -> bool:
        fd = self._fds[index]
        if fd is None:
            fd = self._fds[index] = os.open(self._paths[index], os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _try_once(self) -> _FileLease | None:
        with self._cond:
            if not self._free:
                self._cond.wait(0.2)  # woken by a release in this process
            candidates = random.sample(self._free, len(self._free))
            for index in candidates:
                if self._try_slot(index):
                    self._free.remove(index)
                    return _FileLease(self, index)
        return None

    def _release(self, index: int) -> None:
        with self._cond:
            fd = self._fds[index]
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._free.append(index)
            self._cond.notify()

    def acquire(self, timeout: float | None = None) -> Lease:
        return _poll(self._try_once, self.name, timeout)

    def close(self) -> None:
        """Close the slot files (only when no slot is held)."""
        with self._cond:
            for i, fd in enumerate(self._fds):
                if fd is not None:
                    os.close(fd)
                    self._fds[i] = None

    def __repr__(self) -> str:
        return f"FileSemaphore({self.name!r}, limit={self.limit})"


class _RedisLease:
    def __init__(self, sem: RedisSemaphore, token: str) -> None:
        self._sem, self.token = sem, token
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True, name="lease-renew")
        self._thread.start()

    def _renew_loop(self) -> None:
        interval = self._sem.lease_s / 3
        while not self._stop.wait(interval):
            try:
                ok = self._sem._renew(keys=[self._sem.key], args=[self.token, self._sem.lease_ms])
            except Exception as exc:  # a Redis hiccup: try again next time
                log.warning("renewing the lease of %r failed: %s", self._sem.name, exc)
                continue
            if not ok:
                self.lost = True
                log.warning("lost the lease of a slot of %r", self._sem.name)
                return

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(Exception):
            self._sem.client.zrem(self._sem.key, self.token)


class RedisSemaphore:
    """A semaphore in Redis whose slots are leases renewed while held."""

    def __init__(
        self,
        name: str,
        limit: int,
        client,
        *,
        prefix: str = DEFAULT_PREFIX,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        _check_limit(name, limit)
        if lease_s <= 0:
            raise InvalidInput(f"invalid lease {lease_s!r}: expected seconds > 0")
        self.name, self.limit, self.client, self.lease_s = name, limit, client, lease_s
        self.key = f"{prefix}sem:{hashlib.sha256(name.encode()).hexdigest()[:24]}"
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)

    @property
    def lease_ms(self) -> int:
        return max(1, int(self.lease_s * 1000))

    def _try_once(self) -> _RedisLease | None:
        import redis

        token = uuid.uuid4().hex
        try:
            acquired = self._acquire(keys=[self.key], args=[token, self.limit, self.lease_ms])
        except redis.RedisError as exc:
            raise LockUnavailable(f"cannot take a slot of {self.name!r} on Redis: {exc}") from None
        return _RedisLease(self, token) if acquired else None

    def acquire(self, timeout: float | None = None) -> Lease:
        return _poll(self._try_once, self.name, timeout)

    def holders(self) -> int:
        """How many leases are held now (expired ones not counted)."""
        now_s, now_us = self.client.time()
        return int(self.client.zcount(self.key, now_s * 1000 + now_us // 1000, "+inf"))

    def __repr__(self) -> str:
        return f"RedisSemaphore({self.name!r}, limit={self.limit}, lease_s={self.lease_s})"


class LockFactory:
    """Builds semaphores on Redis (when a URL is given) or on lock files under a folder."""

    def __init__(
        self,
        *,
        redis_url: str | None = None,
        lock_dir: str | Path | None = None,
        prefix: str = DEFAULT_PREFIX,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.redis_url, self.prefix, self.lease_s = redis_url, prefix, lease_s
        if lock_dir is None:
            from terrapipe.settings import get_settings

            lock_dir = get_settings().home_dir / "locks"
        self.lock_dir = Path(lock_dir)
        self._client = None
        self._semaphores: dict[tuple[str, int], Semaphore] = {}
        self._mutex = threading.Lock()

    @classmethod
    def from_settings(cls, **overrides) -> LockFactory:
        """Redis when ``TERRAPIPE_REDIS_URL`` is set, lock files otherwise."""
        from terrapipe.settings import get_settings

        settings = get_settings()
        overrides.setdefault("redis_url", settings.redis_url)
        overrides.setdefault("lock_dir", settings.home_dir / "locks")
        return cls(**overrides)

    def _redis(self):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.redis_url)
        return self._client

    def semaphore(self, name: str, limit: int) -> Semaphore:
        """The semaphore ``name`` with ``limit`` slots (one object per name and limit)."""
        with self._mutex:
            sem = self._semaphores.get((name, limit))
            if sem is None:
                if self.redis_url:
                    sem = RedisSemaphore(
                        name, limit, self._redis(), prefix=self.prefix, lease_s=self.lease_s
                    )
                else:
                    sem = FileSemaphore(name, limit, self.lock_dir)
                self._semaphores[(name, limit)] = sem
            return sem

    def provider_semaphore(self, prefix: str, limit: int) -> Semaphore:
        """The download slots of one provider (its URL prefix)."""
        return self.semaphore(f"provider:{prefix}", limit)

    @contextlib.contextmanager
    def dataset_lock(self, dataset_key: str, timeout: float | None = None) -> Iterator[Lease]:
        """Exclusive work on one dataset's files (across processes when on Redis)."""
        with hold(self.semaphore(f"dataset:{dataset_key}", 1), timeout) as lease:
            yield lease

    def close(self) -> None:
        with self._mutex:
            for sem in self._semaphores.values():
                if isinstance(sem, FileSemaphore):
                    sem.close()
            self._semaphores.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
