"""Cancelling a running local run: from another thread or process via the run store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from terrapipe import Workflow, list_runs, task
from terrapipe.errors import InvalidInput
from terrapipe.runs import cancel_run, get_run

pytestmark = pytest.mark.usefixtures("db_url")


def test_cancel_request_stops_the_run_and_records_no_half_artifacts(tp_home: Path) -> None:
    started = threading.Event()

    @task
    def items() -> list[int]:
        return list(range(6))

    @task
    def slow(ctx, item: int) -> dict:
        path = ctx.artifact_path("part.txt")
        path.write_text("half")
        started.set()
        for _ in range(100):
            ctx.sleep(0.05)
        return {"file": path}

    wf = Workflow("cancellable")
    wf.add_node(items)
    wf.add_node(slow, items, map_over=True)

    def cancel_when_started() -> None:
        started.wait(10)
        time.sleep(0.2)
        cancel_run(list_runs(limit=1)[0].id)

    canceller = threading.Thread(target=cancel_when_started)
    canceller.start()
    t0 = time.monotonic()
    run = wf.run(workers=2)
    canceller.join()
    assert time.monotonic() - t0 < 4
    assert run.state == "cancelled"
    slow_states = [i.state for i in run.nodes["slow"]]
    assert set(slow_states) == {"cancelled"}
    files = [p for p in (tp_home / "artifacts").rglob("*") if p.is_file()]
    assert files == []
    assert get_run(run.id).state == "cancelled"
    with pytest.raises(InvalidInput, match="already cancelled"):
        cancel_run(run.id)
