"""Real parts for the celery engine tests: a PostgreSQL database per test, a Redis db and
queue name per test, and real ``terrapipe worker`` processes (always killed afterwards)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

CLI = [sys.executable, "-m", "terrapipe.cli.main"]

USER_FLOW = """
import os
import time
from pathlib import Path

from terrapipe import Workflow, task


def _mark(marks, name):
    if marks:
        with open(Path(marks) / name, "a") as fh:
            fh.write(f"{os.getpid()}\\n")


@task
def items(n: int = 5) -> list:
    return list(range(n))


@task
def square(item: int, marks: str = "", pause: float = 0.0) -> int:
    _mark(marks, f"square-{item}")
    time.sleep(pause)
    return item * item


@task
def total(square: list) -> int:
    return sum(square)


smoke = Workflow("smoke", version=3)
smoke.add_node(items)
smoke.add_node(square, items, map_over=True)
smoke.add_node(total, square)


@task
def first() -> int:
    return 7


@task
def slow(first: int, marks: str = "", pause: float = 4.0) -> int:
    _mark(marks, "slow")
    time.sleep(pause)
    return first * 6


@task
def after(slow: int, marks: str = "") -> int:
    _mark(marks, "after")
    return slow + 1


chain = Workflow("chain", version=2)
chain.add_node(first)
chain.add_node(slow, first)
chain.add_node(after, slow)


@task
def hold(ctx, item: int, marks: str = "") -> int:
    _mark(marks, f"hold-{item}")
    for _ in range(600):
        ctx.sleep(0.05)
    return item


@task
def done(hold: list, marks: str = "") -> int:
    _mark(marks, "done")
    return len(hold)


@task(retries=2, retry_delay=1.5)
def flaky(item: int, marks: str = "") -> int:
    _mark(marks, f"flaky-{item}")
    tries = len((Path(marks) / f"flaky-{item}").read_text().splitlines())
    if item == 0 and tries < 3:
        raise RuntimeError(f"attempt {tries} failed")
    return item + 100


retrying = Workflow("retrying", version=1)
retrying.add_node(items)
retrying.add_node(flaky, items, map_over=True)


@task
def locked(item: int, marks: str = "", pause: float = 0.6) -> int:
    start = time.time()
    time.sleep(pause)
    with open(Path(marks) / f"locked-{item}", "w") as fh:
        fh.write(f"{start} {time.time()} {os.getpid()}")
    return item


locked.lock = "shared-{marks}"  # every item works on the same dataset's files

locking = Workflow("locking", version=1)
locking.add_node(items)
locking.add_node(locked, items, map_over=True)


@task(timeout=1)
def sleepy(first: int) -> int:
    time.sleep(4)
    return first


@task
def late(sleepy: int) -> int:
    return sleepy + 1


timing = Workflow("timing", version=1)
timing.add_node(first)
timing.add_node(sleepy, first)
timing.add_node(late, sleepy)


hanging = Workflow("hanging", version=1)
hanging.add_node(items)
hanging.add_node(hold, items, map_over=True)
hanging.add_node(done, hold)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@dataclass
class CeleryEnv:
    """Environment of one test: settings for the CLI and workers, the user module."""

    root: Path
    env: dict[str, str]
    module: Path
    workers: list[Worker] = field(default_factory=list)

    @property
    def db_url(self) -> str:
        return self.env["TERRAPIPE_DATABASE_URL"]

    def start_worker(self, *args: str, ready: bool = True, **env: str) -> Worker:
        log = self.root / f"worker-{len(self.workers)}.log"
        proc = subprocess.Popen(
            [*CLI, "worker", "-l", "INFO", *args],
            env={**self.env, **env},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.root,
        )
        worker = Worker(proc, log)
        self.workers.append(worker)
        if ready:
            deadline = time.monotonic() + 60
            while " ready." not in log.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"worker did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
        return worker

    def cli(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*CLI, *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )

    def cli_json(self, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
        done = self.cli(*args, "--json", **env)
        doc = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
        return done.returncode, doc, done.stderr

    def stop_all(self) -> None:
        for w in self.workers:
            w.kill()


def make_env(tmp_path: Path, db_url: str, broker_url: str | None = None) -> CeleryEnv:
    module = tmp_path / "userflow.py"
    module.write_text(USER_FLOW)
    queue = f"tpq-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "TERRAPIPE_HOME": str(tmp_path / "home"),
        "TERRAPIPE_DATABASE_URL": db_url,
        "TERRAPIPE_BROKER_URL": broker_url or f"redis://127.0.0.1:6379/{random.randint(1, 15)}",
        "TERRAPIPE_DEFAULT_QUEUE": queue,
        "TERRAPIPE_NODE_LEASE_S": "3",
        "TERRAPIPE_SWEEP_INTERVAL_S": "0.5",
        "TERRAPIPE_BROKER_VISIBILITY_S": "8",
    }
    env.pop("TERRAPIPE_REDIS_URL", None)
    return CeleryEnv(tmp_path, env, module)


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def node_rows(db_url: str, run_id: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT key, state, worker, attempts FROM nodes WHERE run_id = :r"),
                {"r": run_id},
            ).mappings()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


def run_row(db_url: str, run_id: str) -> dict[str, Any] | None:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(sa.text("SELECT * FROM runs WHERE id = :r"), {"r": run_id})
                .mappings()
                .first()
            )
            return dict(row) if row else None
    finally:
        engine.dispose()
