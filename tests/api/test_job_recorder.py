"""The service's group commit of async jobs: many submits, few commits, nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from terrapipe import Workflow, runs, task
from terrapipe.api.recorder import JobRecorder
from terrapipe.core.owner import current_owner
from terrapipe.errors import InvalidInput, ParameterError
from terrapipe.settings import get_settings
from terrapipe.store import runstore
from terrapipe.store.db import open_database

pytestmark = pytest.mark.usefixtures("db_url")


@task
def echo(n: int = 0) -> int:
    return n


def _workflow() -> Workflow:
    wf = Workflow("recorded", version="3")
    wf.add_node(echo)
    return wf


def test_concurrent_submits_are_all_recorded_in_fewer_commits(tp_home: Path) -> None:
    settings = get_settings()
    db = open_database(settings)
    commits: list[int] = []

    def write(rows):
        commits.append(len(rows))
        return runs.record_queued(db, rows)

    recorder = JobRecorder(write)
    owner = current_owner()
    wf = _workflow()

    async def submit_all() -> list:
        rows = [
            runs.queued_record(wf, {"n": i}, runner=owner, settings=settings) for i in range(300)
        ]
        return await asyncio.gather(*(recorder.record(row) for row in rows))

    try:
        answered = asyncio.run(submit_all())
    finally:
        recorder.close()
    assert sum(commits) == 300
    assert len(commits) < 300  # rows that waited were committed together
    stored = runs.list_runs(limit=1000, db=db)
    assert sorted(r.id for r in stored) == sorted(r.id for r in answered)
    assert {r.state for r in stored} == {"queued"}
    by_id = {r.id: r for r in answered}
    for run in stored:
        assert run.workflow == "recorded" and run.workflow_version == "3"
        assert run.params == by_id[run.id].params
    assert sorted(r.params["n"] for r in stored) == list(range(300))
    db.dispose()


def test_a_failed_commit_reaches_every_waiting_request(tp_home: Path) -> None:
    def write(rows):
        raise InvalidInput("database is read-only")

    recorder = JobRecorder(write)

    async def two() -> list:
        return await asyncio.gather(
            recorder.record({"id": "a"}), recorder.record({"id": "b"}), return_exceptions=True
        )

    try:
        results = asyncio.run(two())
    finally:
        recorder.close()
    assert [str(r) for r in results] == ["database is read-only"] * 2


def test_a_bad_parameter_is_refused_before_anything_is_recorded(tp_home: Path) -> None:
    with pytest.raises(ParameterError, match="parameter 'n': 'many' is not a valid int"):
        runs.queued_record(
            _workflow(), {"n": "many"}, runner=current_owner(), settings=get_settings()
        )


def test_a_claimed_job_runs_once_under_the_runner_that_owns_it(tp_home: Path) -> None:
    """The runner's claim records the run ``running`` (the engine does not record it
    started a second time): the run ends with the runner as owner, its start time from
    the claim, and its node's result; a second claim of the same run does nothing."""
    settings = get_settings()
    db = open_database(settings)
    owner = current_owner()
    wf = _workflow()
    (queued,) = runs.record_queued(
        db, [runs.queued_record(wf, {"n": 7}, runner=owner, settings=settings)]
    )
    assert queued.state == "queued"
    assert runs.run_queued(queued.id, wf, {"n": 7}, db=db, settings=settings) == "succeeded"
    row = runstore.get_run_row(db, queued.id)
    assert (row["owner_host"], row["owner_pid"]) == (owner.host, owner.pid)
    assert row["started_at"] is not None and row["started_at"] <= row["finished_at"]
    run = runs.get_run(queued.id, db=db)
    assert [(i.name, i.state, i.outputs) for i in run.instances] == [("echo", "succeeded", 7)]
    assert runs.run_queued(queued.id, wf, {"n": 7}, db=db, settings=settings) is None
    db.dispose()


def test_the_runner_claims_its_jobs_together_and_skips_a_dismissed_one(tp_home: Path) -> None:
    """The job runner claims the runs it takes in one statement: a run dismissed before the
    claim is not claimed (nor run); the others run once each, under the runner."""
    settings = get_settings()
    db = open_database(settings)
    owner = current_owner()
    wf = _workflow()
    queued = runs.record_queued(
        db, [runs.queued_record(wf, {"n": n}, runner=owner, settings=settings) for n in range(6)]
    )
    ids = [r.id for r in queued]
    runs.cancel_run(ids[2], db=db)
    assert runstore.claim_many(db, [ids[2]]) == set()  # dismissed: not claimable
    _run_with_runner(db, settings, wf, ids, jobs=4, done=lambda st: st.count("succeeded") == 5)
    states = [runstore.get_run_row(db, i)["state"] for i in ids]
    assert states == ["succeeded", "succeeded", "cancelled", "succeeded", "succeeded", "succeeded"]
    for n, run_id in enumerate(ids):
        run = runs.get_run(run_id, db=db)
        if n != 2:
            assert [(i.name, i.state, i.outputs) for i in run.instances] == [
                ("echo", "succeeded", n)
            ]
            assert run.started_at is not None
    assert runs.get_run(ids[2], db=db).instances == []
    db.dispose()


_inside = {"now": 0, "most": 0}


@task
def busy(n: int = 0) -> int:
    import threading
    import time

    lock = _inside.setdefault("lock", threading.Lock())
    with lock:
        _inside["now"] += 1
        _inside["most"] = max(_inside["most"], _inside["now"])
    time.sleep(0.005)
    with lock:
        _inside["now"] -= 1
    return n


def test_a_backlog_runs_once_each_and_never_more_than_jobs_at_once(tp_home: Path) -> None:
    """With more queued runs than job threads, every run executes exactly once, and never
    more than ``jobs`` at a time."""
    settings = get_settings()
    db = open_database(settings)
    owner = current_owner()
    wf = Workflow("backlog", version="1")
    wf.add_node(busy)
    rows = [runs.queued_record(wf, {"n": n}, runner=owner, settings=settings) for n in range(40)]
    ids = [r.id for r in runs.record_queued(db, rows)]
    _run_with_runner(db, settings, wf, ids, jobs=2, done=lambda st: st == ["succeeded"] * len(ids))
    assert [runstore.get_run_row(db, i)["state"] for i in ids] == ["succeeded"] * 40
    for n, run_id in enumerate(ids):
        instances = runs.get_run(run_id, db=db).instances
        assert [(i.state, i.outputs) for i in instances] == [("succeeded", n)]
    assert 1 <= _inside["most"] <= 2
    db.dispose()


def _run_with_runner(db, settings, wf: Workflow, ids: list[str], *, jobs: int, done) -> None:
    """A job runner (as ``terrapipe serve`` starts) serving ``wf`` in a thread until
    ``done(states)`` holds for the runs ``ids`` (or 60 s pass), then stopped."""
    import threading
    import time

    from terrapipe.api.runner import Runner
    from terrapipe.core.registry import WorkflowRegistry

    registry = WorkflowRegistry()
    registry.add(wf)
    runner = Runner(db, settings, registry, owner=current_owner(), jobs=jobs)
    thread = threading.Thread(target=runner.serve, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if done([runstore.get_run_row(db, i)["state"] for i in ids]):
                break
            time.sleep(0.02)
    finally:
        runner.stop.set()
        thread.join(10)
        runner.wait_idle(10)
        runner.close()
