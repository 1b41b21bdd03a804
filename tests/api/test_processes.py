"""OGC API – Processes against a live server, with OWSLib and plain HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from owslib.ogcapi.processes import Processes


def test_landing_and_conformance_with_owslib(live) -> None:
    client = Processes(live.url)
    rels = {link["rel"] for link in client.links}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    assert "http://www.opengis.net/def/rel/ogc/1.0/processes" in rels
    assert "http://www.opengis.net/def/rel/ogc/1.0/job-list" in rels
    classes = client.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in classes


def test_owslib_lists_describes_and_executes_sync(live) -> None:
    client = Processes(live.url)
    ids = {p["id"] for p in client.processes()}
    assert {"sums", "count-words", "zonal-stats"} <= ids
    described = client.process("sums")
    assert described["version"] == "1"
    assert described["inputs"]["n"]["schema"] == {"type": "integer"}
    assert described["inputs"]["n"]["minOccurs"] == 1
    assert described["inputs"]["scale"]["schema"] == {"type": "number", "default": 1.0}
    assert described["inputs"]["scale"]["minOccurs"] == 0
    assert set(described["outputs"]) == {"total"}
    result = client.execute("sums", {"n": 5, "scale": 2.0})
    assert result == {"total": sum(i * 2.0 for i in range(5))}


def test_process_by_name_and_version(live) -> None:
    body = httpx.get(f"{live.url}/processes/sums@1").json()
    assert body["id"] == "sums" and body["version"] == "1"
    missing = httpx.get(f"{live.url}/processes/sums@7")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/no-such-process")


def test_raw_response_of_a_single_value(live) -> None:
    r = httpx.post(
        f"{live.url}/processes/sums/execution",
        json={"inputs": {"n": 4}, "response": "raw"},
    )
    assert r.status_code == 200 and r.json() == 6.0


def test_an_output_with_no_value_is_left_out_of_the_results_document(live) -> None:
    """OGC API – Processes 1.0 results.yaml has no form for null: a sink skipped as not
    applicable is absent from the document (asked for by name, an empty document), and
    present once it runs."""
    url = f"{live.url}/processes/optional-output/execution"
    skipped = httpx.post(url, json={"inputs": {"n": 4}})
    assert skipped.status_code == 200 and skipped.json() == {"summary": 8}
    asked = httpx.post(url, json={"inputs": {}, "outputs": {"details": {}}})
    assert asked.status_code == 200 and asked.json() == {}
    ran = httpx.post(url, json={"inputs": {"n": 1, "detailed": True}})
    assert ran.status_code == 200 and ran.json() == {"summary": 2, "details": [1, 2, 3]}
    wrong = httpx.post(url, json={"inputs": {}, "outputs": {"nothing": {}}})
    assert wrong.status_code == 400 and "'nothing'" in wrong.json()["detail"]


def _wait(url: str, job_id: str, states: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/jobs/{job_id}").json()
        if status["status"] in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {states}: {status}")


def test_async_job_status_results_and_file_link(live) -> None:
    (live.data_root / "words.txt").write_text("one two three four")
    r = httpx.post(
        f"{live.url}/processes/count-words/execution",
        json={"inputs": {"source": str(live.data_root / "words.txt")}},
        headers={"Prefer": "respond-async, wait=1, unknown-preference"},
    )
    assert r.status_code == 201, r.text
    assert r.headers["Preference-Applied"] == "respond-async"
    job_id = r.json()["jobID"]
    assert r.headers["Location"] == f"{live.url}/jobs/{job_id}"
    assert r.json()["status"] in ("accepted", "running", "successful")
    status = _wait(live.url, job_id, {"successful", "failed"})
    assert status["status"] == "successful", status
    assert status["progress"] == 100
    assert status["created"] <= status["started"] <= status["finished"]
    results = httpx.get(f"{live.url}/jobs/{job_id}/results").json()
    assert results["wc"]["value"]["words"] == 4  # an object output, as {"value": ...}
    link = results["wc"]["value"]["file"]
    assert link["href"].startswith(f"{live.url}/jobs/{job_id}/files/")
    assert httpx.get(link["href"]).text == "4"
    listed = httpx.get(f"{live.url}/jobs").json()["jobs"]
    assert listed[0]["jobID"] == job_id


def test_results_not_ready_while_running_then_dismiss(live) -> None:
    r = httpx.post(
        f"{live.url}/processes/slow/execution",
        json={"inputs": {"seconds": 30}},
        headers={"Prefer": "respond-async"},
    )
    job_id = r.json()["jobID"]
    _wait(live.url, job_id, {"running"})
    early = httpx.get(f"{live.url}/jobs/{job_id}/results")
    assert early.status_code == 404
    assert early.json()["type"].endswith("/result-not-ready")
    gone = httpx.delete(f"{live.url}/jobs/{job_id}")
    assert gone.status_code == 200 and gone.json()["status"] == "dismissed"
    final = _wait(live.url, job_id, {"dismissed"}, timeout=10)
    assert final["status"] == "dismissed"


def test_landing_is_json_by_default_and_html_for_a_browser(live) -> None:
    assert httpx.get(f"{live.url}/").json()["title"] == "terrapipe"
    browser = httpx.get(
        f"{live.url}/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert browser.headers["content-type"].startswith("text/html")
    assert f"href='{live.url}/processes'" in browser.text
    assert httpx.get(f"{live.url}/?f=html").headers["content-type"].startswith("text/html")


def _parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[-1].split()[1])  # field 4 of the whole line


def test_async_job_runs_in_the_runner_process_not_the_server(live) -> None:
    """An async job is executed by the job runner `terrapipe serve` started (a child of
    the serve process), not inside the server process that answered the request."""
    import sqlalchemy as sa

    (live.data_root / "runner.txt").write_text("a b")
    r = httpx.post(
        f"{live.url}/processes/count-words/execution",
        json={"inputs": {"source": str(live.data_root / "runner.txt")}},
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["jobID"]
    assert _wait(live.url, job_id, {"successful", "failed"})["status"] == "successful"
    with live.db.begin() as conn:
        owner = conn.execute(sa.text("SELECT owner_pid FROM runs WHERE id = :i"), {"i": job_id})
        owner_pid = owner.scalar()
    assert owner_pid != live.process.pid
    assert _parent_pid(owner_pid) == live.process.pid
    assert (
        Path(f"/proc/{owner_pid}/cmdline").read_bytes().split(b"\0")[2] == b"terrapipe.api.runner"
    )
