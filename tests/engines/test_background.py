"""``submit(..., wait=False)``: the recorded run comes back at once; the local engine then
runs it in a background thread, and the store shows it finishing."""

from __future__ import annotations

import threading
import time

import pytest

from terrapipe import Workflow, get_run, submit, task
from terrapipe.errors import InvalidInput
from terrapipe.runs import cancel_run

pytestmark = pytest.mark.usefixtures("db_url")


def _wait_final(run_id: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = get_run(run_id)
        if run.state not in ("queued", "running"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {run.state} after {timeout}s")


def test_submit_without_wait_returns_the_running_run() -> None:
    release = threading.Event()
    entered = threading.Event()

    @task
    def gate() -> list[int]:
        entered.set()
        assert release.wait(20), "never released"
        return [1, 2, 3]

    @task
    def square(item: int) -> int:
        return item * item

    @task
    def total(square: list[int]) -> int:
        return sum(square)

    wf = Workflow("background")
    wf.add_node(gate)
    wf.add_node(square, gate, map_over=True)
    wf.add_node(total, square)

    run = submit(wf, wait=False)
    # returned while the first node is still blocked: nothing can have finished
    assert run.state == "running"
    assert not release.is_set()
    assert entered.wait(10)
    assert get_run(run.id).state == "running"
    release.set()
    done = _wait_final(run.id)
    assert done.state == "succeeded", done.error
    assert done.nodes["total"].outputs == 1 + 4 + 9
    assert [i.outputs for i in done.nodes["square"]] == [1, 4, 9]


def test_background_run_can_be_cancelled() -> None:
    @task
    def slow(ctx) -> int:
        for _ in range(400):
            ctx.sleep(0.05)
        return 1

    wf = Workflow("background-cancel")
    wf.add_node(slow)
    run = submit(wf, wait=False)
    assert run.state == "running"
    time.sleep(0.3)
    cancel_run(run.id)
    done = _wait_final(run.id)
    assert done.state == "cancelled"
    assert done.nodes["slow"].state == "cancelled"
    with pytest.raises(InvalidInput, match="already cancelled"):
        cancel_run(run.id)
