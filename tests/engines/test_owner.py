"""Runs left ``running`` by a dead process are marked ``interrupted`` when seen; live ones,
and ones owned by another host, are left alone. Owners are real processes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid

import pytest

from terrapipe import Workflow, get_run, list_runs, submit, task
from terrapipe.core.owner import hostname, process_start
from terrapipe.errors import InvalidInput
from terrapipe.runs import cancel_run
from terrapipe.settings import get_settings
from terrapipe.store import runstore
from terrapipe.store.db import open_database

pytestmark = pytest.mark.usefixtures("db_url")


def _record_running(*, host: str, pid: int, started: str | None) -> str:
    run_id = uuid.uuid4().hex
    with open_database(get_settings()) as db:
        runstore.create_run(
            db,
            id=run_id,
            workflow="somebody-elses",
            workflow_version="1",
            params={},
            engine="local",
            force=False,
            state="running",
            started_at=dt.datetime.now(dt.UTC),
            owner_host=host,
            owner_pid=pid,
            owner_started=started,
        )
    return run_id


@pytest.fixture
def dead_pid() -> tuple[int, str | None]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start(proc.pid)
    proc.wait()
    return proc.pid, started


@pytest.fixture
def live_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_dead_owner_is_interrupted_on_get_run(dead_pid) -> None:
    pid, started = dead_pid
    run_id = _record_running(host=hostname(), pid=pid, started=started)
    run = get_run(run_id)
    assert run.state == "interrupted"
    assert run.error == (
        f"the process that ran it (pid {pid} on {hostname()}) ended without finishing"
    )
    assert run.finished_at is not None
    with pytest.raises(InvalidInput, match="already interrupted"):
        cancel_run(run_id)


def test_live_owner_and_other_hosts_are_left_alone(live_process, dead_pid) -> None:
    alive = _record_running(
        host=hostname(), pid=live_process.pid, started=process_start(live_process.pid)
    )
    remote = _record_running(host="another-host.example", pid=dead_pid[0], started=None)
    assert {r.id: r.state for r in list_runs()} == {alive: "running", remote: "running"}


def test_reused_pid_is_interrupted(live_process) -> None:
    """Same pid, another process (its start time differs): the owner is gone."""
    run_id = _record_running(host=hostname(), pid=live_process.pid, started="other-boot:12345")
    assert [(r.id, r.state) for r in list_runs()] == [(run_id, "interrupted")]


def test_next_run_marks_interrupted_runs(dead_pid) -> None:
    pid, started = dead_pid
    run_id = _record_running(host=hostname(), pid=pid, started=started)

    @task
    def one() -> int:
        return 1

    wf = Workflow("next")
    wf.add_node(one)
    with open_database(get_settings()) as db:
        assert runstore.get_run_row(db, run_id)["state"] == "running"
        submit(wf, db=db)
        assert runstore.get_run_row(db, run_id)["state"] == "interrupted"


def test_list_runs_refuses_an_unknown_state() -> None:
    with pytest.raises(InvalidInput, match=r"unknown run state 'runing'; states: queued, running"):
        list_runs(state="runing")
