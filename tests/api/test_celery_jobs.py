"""Jobs of the HTTP service on the celery engine (a real `terrapipe worker` and broker): the
job's status and results read the run store, so they look as a job run in-process does."""

from __future__ import annotations

import time

import httpx
import pytest
from tests.api.conftest import serve, stop
from tests.engines.celery_support import make_env
from tests.pg import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def _finished(url: str, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/jobs/{job_id}").json()
        if status["status"] in ("successful", "failed", "dismissed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {status}")


def _run_job(url: str) -> tuple[dict, dict]:
    r = httpx.post(
        f"{url}/processes/smoke/execution",
        json={"inputs": {"n": 4}},
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 201, r.text
    status = _finished(url, r.json()["jobID"])
    results = httpx.get(f"{url}/jobs/{status['jobID']}/results").json()
    return status, results


def test_async_job_on_celery_workers_looks_like_a_local_one(tmp_path) -> None:
    pg_url = create_pg_database("tp_cel")
    cel = make_env(tmp_path, pg_url)
    try:
        cel.start_worker("--module", str(cel.module), "-c", "2")
        proc, url = serve(cel.env, "--module", str(cel.module))
        try:
            celery_status, celery_results = _run_job(url)
            engine = cel.cli_json("runs", "show", celery_status["jobID"])[1]["engine"]
        finally:
            stop(proc)
        local_env = {k: v for k, v in cel.env.items() if k != "TERRAPIPE_BROKER_URL"}
        local_env["TERRAPIPE_DATABASE_URL"] = ""
        local_env["TERRAPIPE_HOME"] = str(tmp_path / "local-home")
        proc, url = serve(local_env, "--module", str(cel.module))
        try:
            local_status, local_results = _run_job(url)
        finally:
            stop(proc)
    finally:
        cel.stop_all()
        drop_pg_database(pg_url)
    assert engine == "celery"
    assert celery_status["status"] == local_status["status"] == "successful"
    assert celery_status["progress"] == local_status["progress"] == 100
    assert celery_results == local_results == {"total": sum(i * i for i in range(4))}
