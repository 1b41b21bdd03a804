"""Dataset locks on the local engine: a task's ``lock`` keeps nodes off the same files,
within one run, against another process holding the lock, on lock files and on Redis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from terrapipe import Workflow, task
from terrapipe.transfer.locks import LockFactory

REDIS_URL = "redis://127.0.0.1:6379/0"


def _workflow(name: str, lock: str | None, spans: list[tuple[float, float]]) -> Workflow:
    mutex = threading.Lock()

    @task
    def items() -> list[int]:
        return list(range(4))

    @task
    def work(item: int) -> int:
        start = time.monotonic()
        time.sleep(0.25)
        with mutex:
            spans.append((start, time.monotonic()))
        return item

    if lock is not None:
        work.lock = lock
    wf = Workflow(name)
    wf.add_node(items)
    wf.add_node(work, items, map_over=True)
    return wf


def _overlaps(spans: list[tuple[float, float]]) -> int:
    spans = sorted(spans)
    return sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])


@pytest.mark.parametrize("redis", [False, True], ids=["files", "redis"])
def test_items_naming_one_lock_never_run_at_once(
    tp_home: Path, monkeypatch: pytest.MonkeyPatch, redis: bool
) -> None:
    if redis:
        monkeypatch.setenv("TERRAPIPE_REDIS_URL", REDIS_URL)
    free: list[tuple[float, float]] = []
    run = _workflow("unlocked", None, free).run(workers=4)
    assert run.state == "succeeded"
    assert _overlaps(free) >= 2  # without a lock, four threads work side by side

    locked: list[tuple[float, float]] = []
    run = _workflow("locked", f"shared-{uuid.uuid4().hex}", locked).run(workers=4, force=True)
    assert run.state == "succeeded"
    assert len(locked) == 4
    assert _overlaps(locked) == 0


HOLDER = """
import sys, time
from terrapipe.transfer.locks import LockFactory
factory = LockFactory(redis_url=sys.argv[1] or None, lock_dir=sys.argv[2])
lease = factory.semaphore("dataset:" + sys.argv[3], 1).acquire(timeout=10)
print("held", flush=True)
time.sleep(float(sys.argv[4]))
lease.release()
"""


@pytest.mark.parametrize("redis", [False, True], ids=["files", "redis"])
def test_a_node_waits_while_another_process_holds_its_lock(
    tp_home: Path, monkeypatch: pytest.MonkeyPatch, redis: bool
) -> None:
    if redis:
        monkeypatch.setenv("TERRAPIPE_REDIS_URL", REDIS_URL)
    name = f"scene-{uuid.uuid4().hex}"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER)]
        + [REDIS_URL if redis else "", str(tp_home / "locks"), name, "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        released_by = time.monotonic() + 1.5
        started: list[float] = []

        @task
        def touch() -> str:
            started.append(time.monotonic())
            return "done"

        touch.lock = name
        wf = Workflow("waits-for-lock")
        wf.add_node(touch)
        run = wf.run()
        assert run.state == "succeeded"
        assert started[0] >= released_by - 0.3  # it ran only once the holder let go
    finally:
        holder.wait(10)
    assert holder.returncode == 0


def test_cancel_while_waiting_for_a_lock_ends_the_node_cancelled(tp_home: Path) -> None:
    from terrapipe.runs import cancel_run, list_runs

    name = f"busy-{uuid.uuid4().hex}"
    lease = LockFactory(lock_dir=tp_home / "locks").semaphore(f"dataset:{name}", 1).acquire()
    ran: list[int] = []

    @task
    def blocked() -> int:
        ran.append(1)
        return 1

    blocked.lock = name
    wf = Workflow("cancel-waiting")
    wf.add_node(blocked)
    canceller = threading.Timer(0.8, lambda: cancel_run(list_runs(limit=1)[0].id))
    canceller.start()
    try:
        t0 = time.monotonic()
        run = wf.run()
        assert time.monotonic() - t0 < 5
    finally:
        canceller.join()
        lease.release()
    assert run.state == "cancelled"
    assert run.nodes["blocked"].state == "cancelled"
    assert ran == []


def test_a_lock_naming_an_unknown_parameter_fails_the_node_on_input(tp_home: Path) -> None:
    @task
    def named() -> int:
        return 1

    named.lock = "dataset:{nope}"
    wf = Workflow("bad-lock")
    wf.add_node(named)
    run = wf.run()
    assert run.state == "failed"
    inst = run.nodes["named"]
    assert inst.state == "failed"
    assert "lock 'dataset:{nope}' of node named names an unknown value" in inst.error
