"""Provider slots across threads and processes (Redis and lock files), leases, dataset locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from transfer_data import REDIS_URL

from terrapipe.errors import LockTimeout
from terrapipe.transfer.locks import FileSemaphore, LockFactory, RedisSemaphore, hold

WORKER = str(Path(__file__).with_name("transfer_worker.py"))


def spawn(args: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, WORKER, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def serve_slow_files(http_server, n: int) -> list[str]:
    for i in range(n):
        http_server.state.files[f"s{i}.bin"] = os.urandom(50_000)
    http_server.state.slow_chunk_delay = 0.04
    return [http_server.url("slow", f"s{i}.bin") for i in range(n)]


@pytest.mark.parametrize("backend", ["redis", "files"])
def test_max_parallel_downloads_holds_across_two_processes(
    backend, http_server, tmp_path, redis_prefix
):
    uris = serve_slow_files(http_server, 12)
    common = {
        "mode": "download",
        "redis_url": REDIS_URL if backend == "redis" else None,
        "prefix": redis_prefix,
        "lock_dir": str(tmp_path / "locks"),
        "providers": {http_server.base + "/slow/": {"max_parallel_downloads": 2}},
    }
    procs = [
        spawn({**common, "uris": uris[k::2], "out": str(tmp_path / f"out{k}")}) for k in (0, 1)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    got = sum(1 for _, p, _ in http_server.state.requests if p.startswith("/slow/"))
    assert got == 12
    assert http_server.state.max_in_flight == 2  # never a third, yet really parallel


def test_redis_lease_of_killed_holder_expires(tmp_path, redis_prefix):
    name, lease_s = "provider:https://x/", 1.0
    holder = spawn(
        {
            "mode": "hold",
            "redis_url": REDIS_URL,
            "prefix": redis_prefix,
            "lock_dir": str(tmp_path),
            "lease_s": lease_s,
            "name": name,
            "limit": 1,
        }
    )
    assert holder.stdout.readline().strip() == "held"
    client = redis.Redis.from_url(REDIS_URL)
    sem = RedisSemaphore(name, 1, client, prefix=redis_prefix, lease_s=lease_s)
    # the holder renews its lease: still held after more than one lease period
    with pytest.raises(LockTimeout):
        sem.acquire(timeout=1.6)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    t0 = time.monotonic()
    lease = sem.acquire(timeout=5)
    assert time.monotonic() - t0 <= lease_s + 0.5
    assert sem.holders() == 1
    lease.release()
    assert sem.holders() == 0
    client.close()


def test_file_semaphore_limits_threads(tmp_path):
    sem = FileSemaphore("t", 3, tmp_path)
    state = {"now": 0, "max": 0}
    mutex = threading.Lock()

    def work():
        with hold(sem):
            with mutex:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.03)
            with mutex:
                state["now"] -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["max"] == 3


def test_dataset_lock_is_exclusive(tmp_path, redis_prefix):
    for factory in (
        LockFactory(lock_dir=tmp_path),
        LockFactory(redis_url=REDIS_URL, lock_dir=tmp_path, prefix=redis_prefix),
    ):
        with factory.dataset_lock("ds-1"):
            with (
                pytest.raises(LockTimeout, match="dataset:ds-1"),
                factory.dataset_lock("ds-1", timeout=0.2),
            ):
                pass
            with factory.dataset_lock("ds-2", timeout=0.2):
                pass
        with factory.dataset_lock("ds-1", timeout=0.2):
            pass
        factory.close()


def test_unreachable_redis_is_a_clear_error(tmp_path):
    import socket

    from terrapipe.errors import LockUnavailable

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    factory = LockFactory(redis_url=f"redis://127.0.0.1:{port}/0", lock_dir=tmp_path)
    with pytest.raises(LockUnavailable, match="provider:x"):
        factory.provider_semaphore("x", 2).acquire(timeout=1)
