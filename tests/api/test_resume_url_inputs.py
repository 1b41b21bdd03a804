"""``runs resume`` of a job with URL inputs downloads them first (a rerun after a crash
finishes the job).

An async job of the service records its URL inputs with the run and is executed only once
they are downloaded; a process that dies before or during that download leaves the run
``interrupted`` with no file in place. Resuming it, through :func:`terrapipe.runs.resume_run`
and through ``terrapipe runs resume``, downloads each URL (revalidated: the bytes served
now, not a file left from before) and finishes the job; a URL that fails now ends the
resumed run failed on its input, naming the input and the URL (CLI exit 2).

Real HTTP servers on 127.0.0.1 serve the inputs; results are checked against the served
bytes (their word count), never against the service's own output.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import FLOWS, free_port
from tests.api.test_url_inputs import ASYNC, Origin, origin_server

from terrapipe import runs
from terrapipe.core.owner import Owner, hostname, process_start
from terrapipe.core.registry import find_workflow
from terrapipe.settings import get_settings
from terrapipe.store import runstore
from terrapipe.store.db import open_database
from terrapipe.transfer.url_inputs import url_target


def _words(data: bytes) -> int:
    """The reference: the word count of the bytes as served."""
    return len(data.decode().split())


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _gone_owner() -> Owner:
    """The identity of a process that ran on this host and has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start(proc.pid)
    proc.wait()
    return Owner(hostname(), proc.pid, started)


def _record_orphan(url: str) -> str:
    """A count-words job recorded as the service records an async one with a URL input
    (queued, owned by its runner, the URL sealed with the run), whose runner is gone
    before it downloaded anything; its id."""
    settings = get_settings()
    workflow = find_workflow("count-words", modules=[FLOWS])
    target = url_target(url, settings.home_dir / "inputs")
    row = runs.queued_record(
        workflow,
        {"source": str(target)},
        runner=_gone_owner(),
        settings=settings,
        modules=[FLOWS],
        input_urls={"source": url},
    )
    with open_database(settings) as db:
        (run,) = runs.record_queued(db, [row])
    assert not target.exists()
    return run.id


def _words_of(run: runs.Run) -> int:
    return run.nodes["wc"].outputs["words"]


@pytest.mark.usefixtures("db_url")
@pytest.mark.parametrize("way", ["python", "cli"])
def test_resume_downloads_the_url_input_of_an_orphaned_job(way, cli) -> None:
    origin = Origin(b"the delta gathers every channel")
    with origin_server(origin) as base:
        host = base.split("//", 1)[1]
        url = f"http://reader:s3cretpw@{host}/delta.txt?token=tok4567xyz"
        run_id = _record_orphan(url)
        assert runs.get_run(run_id).state == "interrupted"
        assert origin.requests == []

        if way == "python":
            done = runs.resume_run(run_id)
        else:
            code, out, err = cli("runs", "resume", run_id, "--json")
            assert code == 0, (out, err)
            done = runs.get_run(run_id)
    assert done.id == run_id and done.state == "succeeded", done.error
    assert _words_of(done) == _words(origin.body) == 5
    assert Path(done.params["source"]).read_bytes() == origin.body
    # the sealed credentials were opened: the server got the URL whole
    seen = origin.requests[-1]
    assert seen["path"] == "/delta.txt?token=tok4567xyz"
    assert seen["Authorization"] == "Basic " + base64.b64encode(b"reader:s3cretpw").decode()


@pytest.mark.usefixtures("db_url")
@pytest.mark.parametrize("way", ["python", "cli"])
def test_a_resume_whose_url_now_fails_ends_failed_naming_the_input(way, cli) -> None:
    origin = Origin(b"")
    with origin_server(origin) as base:
        url = f"{base}/vanished.txt"
        run_id = _record_orphan(url)
        assert runs.get_run(run_id).state == "interrupted"
        origin.status = 404
        if way == "python":
            done = runs.resume_run(run_id)
        else:
            code, out, err = cli("runs", "resume", run_id)
            assert code == 2, (out, err)  # bad input, as for any other
            assert "'source'" in out + err and url in out + err
            done = runs.get_run(run_id)
        assert done.state == "failed" and done.failed_on_input
        assert "'source'" in done.error and url in done.error and "404" in done.error
        assert done.instances == []  # nothing ran on a missing file
        assert len(origin.requests) == 1

        # served again: resuming the failed run finishes it
        origin.status, origin.body = 200, b"found again at last"
        done = runs.resume_run(run_id)
    assert done.state == "succeeded", done.error
    assert _words_of(done) == _words(origin.body) == 4


def test_a_service_killed_while_it_downloads_leaves_a_job_resume_finishes(tmp_path) -> None:
    """The real crash: ``terrapipe serve`` (server and job runner) killed with SIGKILL while
    its runner downloads a job's URL input. The job is found ``interrupted``; the served
    file changes meanwhile, and the resume fetches what is served now. The workflow comes
    from the service's ``--module``: the job recorded it, so the resume needs no option."""
    origin = Origin(b"a slow river", etag=True)
    origin.hold = threading.Event()
    root = tmp_path / "data"
    root.mkdir()
    env = dict(os.environ, TERRAPIPE_DATA_ROOTS=str(root))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "terrapipe.cli.main", "serve", "--port", str(port)]
        + ["--module", FLOWS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the runner dies with it
    )
    service = f"http://127.0.0.1:{port}"
    try:
        with origin_server(origin) as base:
            url = f"{base}/river.txt"
            try:
                _wait_for(lambda: _answers(service), timeout=30)
                r = httpx.post(
                    f"{service}/processes/count-words/execution",
                    json={"inputs": {"source": url}},
                    headers=ASYNC,
                    timeout=10,
                )
                assert r.status_code == 201, r.text
                job_id = r.json()["jobID"]
                _wait_for(lambda: len(origin.requests) == 1)  # the download has begun
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            finally:
                origin.hold.set()
            origin.hold = None
            _wait_for(lambda: runs.get_run(job_id).state == "interrupted")
            assert runs.get_run(job_id).instances == []
            with open_database(get_settings()) as db:
                assert runstore.get_run_row(db, job_id)["input_urls"] == {"source": {"url": url}}

            origin.body = b"the river changed its course"
            done = runs.resume_run(job_id)  # the job recorded the service's --module
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert done.state == "succeeded", done.error
    assert _words_of(done) == _words(origin.body) == 5
    assert Path(done.params["source"]).read_bytes() == origin.body


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/conformance", timeout=1)
    except httpx.HTTPError:
        return False
    return True
