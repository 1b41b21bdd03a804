"""A live ``terrapipe serve`` process on 127.0.0.1 for real HTTP clients.

A separate process, not a thread: GDAL clients (OAPIF, /vsicurl/) hold the GIL while
they wait for the answer, so a server in the test's own process would never reply.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

FLOWS = str(Path(__file__).with_name("flows.py"))


@dataclass
class LiveService:
    url: str
    db: object
    data_root: Path
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str]:
    """Start ``terrapipe serve`` and wait until it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "terrapipe.cli.main", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stdout.read().decode(errors='replace')}")
        try:
            httpx.get(url + "/conformance", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("serve did not answer within 30 s")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """One server per test module, with its own home, database and data root."""
    from terrapipe.settings import get_settings
    from terrapipe.store.db import open_database

    base = tmp_path_factory.mktemp("service")
    root = base / "data"
    root.mkdir()
    env = dict(os.environ)
    env.pop("TERRAPIPE_DATABASE_URL", None)
    env.update(TERRAPIPE_HOME=str(base / "home"), TERRAPIPE_DATA_ROOTS=str(root))
    db = open_database(get_settings(home=base / "home"))
    proc, url = serve(env, "--module", FLOWS)
    yield LiveService(url, db, root, proc)
    stop(proc)
    db.dispose()
