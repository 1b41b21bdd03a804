"""URL file inputs: downloaded, revalidated on every request, never used stale.

Real HTTP servers on 127.0.0.1 in a thread serve a file that changes between jobs; each
job's result is checked against the served bytes themselves (the word count of the text
the server holds at that moment), not against the service's own output. The servers
count what they send, so a ``304`` is seen to send no body.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from terrapipe.api.app import create_app
from terrapipe.api.service import Service
from terrapipe.errors import UrlInputError
from terrapipe.settings import get_settings
from terrapipe.store.db import open_database
from terrapipe.transfer.url_inputs import SIDECAR, fetch_url, url_target

FLOWS = str(Path(__file__).with_name("flows.py"))
ASYNC = {"Prefer": "respond-async"}


# -- servers ---------------------------------------------------------------------------
class Origin:
    """What a test server serves and what it saw: one body, optional validators, every
    request's headers, and how many bodies (200s) and 304s it sent."""

    def __init__(self, body: bytes = b"", *, etag: bool = False) -> None:
        self.body = body
        self.etag = etag
        self.status = 200
        self.hold: threading.Event | None = None  # set: the answer waits until it is set
        self.requests: list[dict[str, str]] = []
        self.bodies = 0
        self.not_modified = 0
        self.lock = threading.Lock()

    def tag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


def _handler(origin: Origin) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with origin.lock:
                origin.requests.append({**dict(self.headers), "path": self.path})
            if origin.hold is not None:
                origin.hold.wait(30)
            if origin.status != 200:
                self.send_error(origin.status)
                return
            if origin.etag and self.headers.get("If-None-Match") == origin.tag():
                with origin.lock:
                    origin.not_modified += 1
                self.send_response(304)
                self.send_header("ETag", origin.tag())
                self.end_headers()
                return
            body = origin.body
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if origin.etag:
                self.send_header("ETag", origin.tag())
            self.end_headers()
            self.wfile.write(body)
            with origin.lock:
                origin.bodies += 1

    return Handler


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free 127.0.0.1 port; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def origin_server(origin: Origin) -> Iterator[str]:
    with serving(_handler(origin)) as base:
        yield base


@contextmanager
def directory_server(
    folder: Path, seen: list[dict[str, str]], clock: Callable[[], float] | None = None
) -> Iterator[str]:
    """Python's own file server (``Last-Modified``, ``If-Modified-Since`` and ``304`` as
    it implements them) over ``folder``; the headers of every request go to ``seen``.
    ``clock`` gives the time its ``Date`` header tells (default: now)."""

    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, directory=str(folder), **kw)

        def log_message(self, *args: object) -> None:
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            if timestamp is None and clock is not None:
                timestamp = clock()
            return super().date_time_string(timestamp)

        def send_response(self, code: int, message: str | None = None) -> None:
            seen.append({**dict(self.headers), "answer": str(code)})
            super().send_response(code, message)

    with serving(Files) as base:
        yield base


# -- the service -----------------------------------------------------------------------
@dataclass
class Live:
    """The service on a real port of 127.0.0.1 (uvicorn in a thread), and its state."""

    url: str
    http: httpx.Client
    service: Service

    def post(self, process: str, inputs: dict, **kw: object) -> httpx.Response:
        return self.http.post(f"/processes/{process}/execution", json={"inputs": inputs}, **kw)


@contextmanager
def live_service(tmp_path: Path, *, runner: bool = False) -> Iterator[Live]:
    """The service in this process; with ``runner``, a job runner (as ``terrapipe serve``
    starts in a process of its own) in a thread executes its async jobs, otherwise they
    run in the server's background threads (an embedded app)."""
    import uvicorn

    from terrapipe.api.runner import Runner
    from terrapipe.core.owner import current_owner
    from terrapipe.core.registry import load_registry

    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    conf = get_settings(home=tmp_path / "home", data_roots=str(root))
    db = open_database(conf)
    owner = current_owner() if runner else None
    app = create_app(conf, db=db, modules=[FLOWS], runner=owner)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    jobs = None
    if owner is not None:
        jobs = Runner(db, conf, load_registry([FLOWS]), owner=owner, jobs=2)
        threading.Thread(target=jobs.serve, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield Live(url, client, app.state.service)
    finally:
        if jobs is not None:
            jobs.stop.set()
            jobs.wait_idle(10)
            jobs.close()
        server.should_exit = True
        thread.join(10)
        db.dispose()


def _count_words(live: Live, url: str) -> dict:
    """A synchronous count-words job on ``url``: its word count and its run."""
    from terrapipe import runs

    r = live.post("count-words", {"source": url})
    assert r.status_code == 200, r.text
    run = runs.get_run(r.headers["location"].rsplit("/", 1)[1], db=live.service.db)
    return {"words": r.json()["wc"]["value"]["words"], "run": run}


def _words(data: bytes) -> int:
    """The reference: the word count of the bytes as served."""
    return len(data.decode().split())


def _kept_file(live: Live, url: str) -> Path:
    return url_target(url, live.service.settings.home_dir / "inputs")


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


# -- revalidation ----------------------------------------------------------------------
def test_a_file_changed_on_the_server_is_fetched_again_last_modified(tmp_path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    served = site / "words.txt"
    served.write_text("one two three")
    hour_ago = time.time() - 3600
    os.utime(served, (hour_ago, hour_ago))
    seen: list[dict[str, str]] = []
    with directory_server(site, seen) as base, live_service(tmp_path) as live:
        url = f"{base}/words.txt"
        first = _count_words(live, url)
        assert first["words"] == _words(served.read_bytes()) == 3
        assert "If-Modified-Since" not in seen[-1]

        served.write_text("alpha beta gamma delta epsilon")
        os.utime(served, (hour_ago + 1800, hour_ago + 1800))
        second = _count_words(live, url)
        assert second["words"] == _words(served.read_bytes()) == 5
        # asked conditionally with the date it gave, and the server sent the new body
        assert seen[-1]["If-Modified-Since"] and seen[-1]["answer"] == "200"
        assert second["run"].params["source"] == _kept_file(live, url)
        assert _kept_file(live, url).read_bytes() == served.read_bytes()

        before = _identity(_kept_file(live, url))
        third = _count_words(live, url)
        assert seen[-1]["answer"] == "304"
        assert third["words"] == 5
        assert _identity(_kept_file(live, url)) == before
        assert third["run"].nodes["wc"].state == "cached"


def test_a_change_within_the_second_it_was_served_is_not_missed(tmp_path) -> None:
    """``Last-Modified`` has one-second steps: a file served in the second it changed may
    change again under the same date, so that date is not used to ask ``304`` (and the
    new bytes of the same size get a new fingerprint, so the task cache misses). The
    server's clock is held in the second the file changed."""
    site = tmp_path / "site"
    site.mkdir()
    served = site / "w.txt"
    seen: list[dict[str, str]] = []
    same_second = directory_server(site, seen, clock=lambda: served.stat().st_mtime)
    with same_second as base, live_service(tmp_path) as live:
        url = f"{base}/w.txt"
        served.write_text("aaa bbb")
        assert _count_words(live, url)["words"] == _words(served.read_bytes()) == 2
        stamp = served.stat().st_mtime
        served.write_text("c d e f")  # the same size
        os.utime(served, (stamp, stamp))  # and the same date: only the bytes differ
        second = _count_words(live, url)
        assert second["words"] == _words(served.read_bytes()) == 4
        assert "If-Modified-Since" not in seen[-1]
        assert second["run"].nodes["wc"].state == "succeeded"


def test_an_unchanged_file_is_not_sent_again_etag(tmp_path) -> None:
    origin = Origin(b"red green blue", etag=True)
    with origin_server(origin) as base, live_service(tmp_path) as live:
        url = f"{base}/colours.txt"
        assert _count_words(live, url)["words"] == _words(origin.body) == 3
        kept = _kept_file(live, url)
        before = _identity(kept)

        again = _count_words(live, url)
        assert origin.requests[-1]["If-None-Match"] == origin.tag()
        assert (origin.bodies, origin.not_modified) == (1, 1)  # no second body
        assert again["words"] == 3
        assert _identity(kept) == before
        assert again["run"].nodes["wc"].state == "cached"

        origin.body = b"cyan magenta yellow black"
        changed = _count_words(live, url)
        assert origin.bodies == 2
        assert changed["words"] == _words(origin.body) == 4
        assert kept.read_bytes() == origin.body


def test_the_same_bytes_from_a_server_without_validators_keep_the_file(tmp_path) -> None:
    origin = Origin(b"north south east west")
    with origin_server(origin) as base, live_service(tmp_path) as live:
        url = f"{base}/compass.txt"
        assert _count_words(live, url)["words"] == 4
        kept = _kept_file(live, url)
        before = _identity(kept)

        again = _count_words(live, url)
        assert origin.bodies == 2  # nothing to ask conditionally with: sent again
        assert "If-None-Match" not in origin.requests[-1]
        assert _identity(kept) == before  # same bytes: the file (and its mtime) kept
        assert again["run"].nodes["wc"].state == "cached"

        origin.body = b"up down"
        changed = _count_words(live, url)
        assert changed["words"] == _words(origin.body) == 2
        assert kept.read_bytes() == origin.body
        assert changed["run"].nodes["wc"].state == "succeeded"


def test_a_file_without_a_sidecar_is_checked_by_its_bytes(tmp_path) -> None:
    """A file kept by an older version (no sidecar) or edited by hand: its validators are
    not trusted; the same bytes keep it, other bytes replace it."""
    origin = Origin(b"one two", etag=True)
    with origin_server(origin) as base:
        url = f"{base}/a.txt"
        target = url_target(url, tmp_path)
        target.parent.mkdir(parents=True)
        target.write_bytes(b"one two")
        before = _identity(target)
        fetch_url("source", url, target, max_bytes=1000)
        assert "If-None-Match" not in origin.requests[-1]
        assert _identity(target) == before

        target.write_bytes(b"edited by hand")  # the sidecar no longer describes the file
        fetch_url("source", url, target, max_bytes=1000)
        assert "If-None-Match" not in origin.requests[-1]
        assert target.read_bytes() == b"one two"


def test_concurrent_fetches_of_one_url_leave_one_whole_file(tmp_path) -> None:
    """Eight fetches at once while the served bytes change: the file ends as exactly one
    of the bodies served, its sidecar describes it, and no temporary file is left."""
    bodies = [bytes([65 + i]) * (200_000 + i) for i in range(8)]
    origin = Origin(bodies[0])
    served: list[bytes] = []

    class Changing(_handler(origin)):  # type: ignore[misc]
        def do_GET(self) -> None:  # noqa: N802
            with origin.lock:
                origin.body = bodies[len(served) % len(bodies)]
                served.append(origin.body)
            super().do_GET()

    with serving(Changing) as base:
        url = f"{base}/big.bin"
        target = url_target(url, tmp_path)
        errors: list[BaseException] = []

        def fetch() -> None:
            try:
                fetch_url("source", url, target, max_bytes=1 << 20)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    data = target.read_bytes()
    assert data == served[-1]  # fetches take turns: the last one served is what is kept
    meta = json.loads((target.parent / SIDECAR).read_text())
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        [target.name, SIDECAR, ".fetch.lock"]
    )


# -- errors ----------------------------------------------------------------------------
def test_a_missing_or_too_large_url_is_a_400_naming_the_input(tmp_path) -> None:
    origin = Origin(b"x" * 100)
    with origin_server(origin) as base, live_service(tmp_path) as live:
        origin.status = 404
        r = live.post("count-words", {"source": f"http://me:s3cret@{base[7:]}/gone.txt"})
        assert r.status_code == 400
        detail = r.json()["detail"]
        assert "'source'" in detail and "/gone.txt" in detail and "404" in detail
        assert "s3cret" not in detail

        origin.status = 200
        live.service.max_download = 50
        r = live.post("count-words", {"source": f"{base}/big.txt"})
        assert r.status_code == 400
        assert "'source'" in r.json()["detail"] and "larger than 50 bytes" in r.json()["detail"]

        r = live.post("count-words", {"source": "http://127.0.0.1:1/nothing-listens.txt"})
        assert r.status_code == 400
        assert "'source'" in r.json()["detail"] and "cannot fetch" in r.json()["detail"]


def test_a_failed_refresh_keeps_the_file_it_had(tmp_path) -> None:
    origin = Origin(b"kept words")
    with origin_server(origin) as base:
        url = f"{base}/k.txt"
        target = url_target(url, tmp_path)
        fetch_url("source", url, target, max_bytes=1000)
        before = _identity(target)
        origin.body = b"y" * 2000
        with pytest.raises(UrlInputError, match="larger than 1000 bytes"):
            fetch_url("source", url, target, max_bytes=1000)
        origin.status = 500
        with pytest.raises(UrlInputError, match="answered 500"):
            fetch_url("source", url, target, max_bytes=1000)
        assert _identity(target) == before and target.read_bytes() == b"kept words"


def test_the_debris_of_a_fetch_killed_mid_download_is_removed_by_the_next(tmp_path) -> None:
    """A fetcher SIGKILLed half way through a body leaves its temporary file; the next
    fetch of that URL (holding its lock, so no fetcher is alive) removes it and stores the
    whole file."""
    import signal
    import subprocess
    import sys

    release = threading.Event()
    whole = b"the whole body of the file " * (160 * 1024)  # 4 MiB: chunks of 1 MiB

    class HalfThenStall(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", str(len(whole)))
            self.end_headers()
            if not release.is_set():
                self.wfile.write(whole[: len(whole) // 2])
                self.wfile.flush()
                release.wait(30)  # the fetcher is killed meanwhile
                return
            self.wfile.write(whole)

    with serving(HalfThenStall) as base:
        url = f"{base}/data.txt"
        target = url_target(url, tmp_path / "inputs")
        code = (
            "import sys; from pathlib import Path; from terrapipe.transfer.url_inputs import "
            "fetch_url; fetch_url('source', sys.argv[1], Path(sys.argv[2]), max_bytes=1 << 30)"
        )
        proc = subprocess.Popen([sys.executable, "-c", code, url, str(target)])
        try:
            deadline = time.monotonic() + 30
            while not list(target.parent.glob(".data.*.tmp.txt")):
                assert time.monotonic() < deadline and proc.poll() is None, "no download began"
                time.sleep(0.02)
            while max(p.stat().st_size for p in target.parent.glob(".data.*.tmp.txt")) == 0:
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        (debris,) = target.parent.glob(".data.*.tmp.txt")
        assert 0 < debris.stat().st_size < len(whole) and not target.exists()
        unrelated = target.parent / ".other.0123abcd.tmp.txt"  # not this target's: kept
        unrelated.write_bytes(b"x")
        sidecar_debris = target.parent / "..fetch.89abcdef.tmp.json"  # a killed sidecar write
        sidecar_debris.write_text("{")

        release.set()
        fetch_url("source", url, target, max_bytes=1 << 30)
    assert target.read_bytes() == whole
    assert not debris.exists() and unrelated.exists()
    assert not sidecar_debris.exists()


def test_a_download_that_cannot_be_stored_is_a_store_error_503(tmp_path) -> None:
    """The local disk failing (here: the inputs folder is a file) is not the URL's fault:
    a StoreError (503, exit 1), naming the input and the URL, not bad input."""
    from terrapipe.errors import InvalidInput, StoreError

    origin = Origin(b"fine bytes")
    with origin_server(origin) as base, live_service(tmp_path) as live:
        url = f"{base}/ok.txt"
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        with pytest.raises(StoreError, match="cannot be stored") as caught:
            fetch_url("source", url, url_target(url, blocker), max_bytes=1000)
        assert not isinstance(caught.value, InvalidInput)
        assert "'source'" in str(caught.value) and url in str(caught.value)

        live.service.settings.home_dir.joinpath("inputs").write_text("")
        r = live.post("count-words", {"source": url})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        detail = r.json()["detail"]
        assert "'source'" in detail and url in detail and "cannot be stored" in detail


# -- async jobs: the download is the executor's, not the request's ---------------------
def _job(http: httpx.Client, job_id: str, states: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"/jobs/{job_id}").json()
        if status["status"] in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {states}: {status}")


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# the runner's two ways in: the plain-ASGI front, and the FastAPI route (a query string
# sends the request past the front); and the embedded app without a runner process
WAYS = [
    pytest.param(True, "", id="runner-front"),
    pytest.param(True, "?way=route", id="runner-route"),
    pytest.param(False, "", id="no-runner"),
]


@pytest.mark.parametrize(("runner", "query"), WAYS)
def test_an_async_job_answers_before_its_url_is_downloaded(tmp_path, runner, query) -> None:
    from terrapipe import runs
    from terrapipe.store import runstore

    origin = Origin(b"slow river delta", etag=True)
    origin.hold = threading.Event()
    with origin_server(origin) as base, live_service(tmp_path, runner=runner) as live:
        url = f"{base}/held.txt"
        try:
            r = live.http.post(
                f"/processes/count-words/execution{query}",
                json={"inputs": {"source": url}},
                headers=ASYNC,
                timeout=5,
            )
            assert r.status_code == 201, r.text
            assert r.json()["status"] == "accepted"
            assert origin.bodies == 0  # answered while the server holds the file
            job_id = r.json()["jobID"]
            _wait_for(lambda: len(origin.requests) == 1)  # the download has begun
            assert live.http.get(f"/jobs/{job_id}").json()["status"] == "accepted"
        finally:
            origin.hold.set()
        assert _job(live.http, job_id, {"successful", "failed"})["status"] == "successful"
        results = live.http.get(f"/jobs/{job_id}/results").json()
        assert results["wc"]["value"]["words"] == _words(origin.body) == 3
        # the run records the local path it read, and the URL that path came from
        assert runs.get_run(job_id, db=live.service.db).params == {"source": _kept_file(live, url)}
        assert runstore.get_run_row(live.service.db, job_id)["input_urls"] == {
            "source": {"url": url}
        }

        origin.hold = None
        origin.body = b"the river changed its course"
        r = live.post("count-words", {"source": url}, headers=ASYNC)
        assert r.status_code == 201
        job_id = r.json()["jobID"]
        assert _job(live.http, job_id, {"successful", "failed"})["status"] == "successful"
        results = live.http.get(f"/jobs/{job_id}/results").json()
        assert results["wc"]["value"]["words"] == _words(origin.body) == 5
        assert origin.requests[-1]["If-None-Match"]  # revalidated, as a sync job is


@pytest.mark.parametrize(("runner", "query"), WAYS)
def test_a_url_inputs_credentials_are_not_kept_in_clear(tmp_path, runner, query) -> None:
    """A URL with a password and a token reaches its server whole, but the run store keeps
    it scrubbed and sealed: neither secret is anywhere in the database's files."""
    import base64

    from terrapipe.store import runstore

    origin = Origin(b"braided channels of the delta")
    with origin_server(origin) as base, live_service(tmp_path, runner=runner) as live:
        host = base.split("//", 1)[1]
        url = f"http://reader:s3cretpw@{host}/private.txt?token=tok4567xyz&page=1"
        r = live.http.post(
            f"/processes/count-words/execution{query}",
            json={"inputs": {"source": url}},
            headers=ASYNC,
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["jobID"]
        assert _job(live.http, job_id, {"successful", "failed"})["status"] == "successful"
        results = live.http.get(f"/jobs/{job_id}/results").json()
        assert results["wc"]["value"]["words"] == _words(origin.body) == 5
        seen = origin.requests[-1]
        assert seen["path"] == "/private.txt?token=tok4567xyz&page=1"
        assert seen["Authorization"] == "Basic " + base64.b64encode(b"reader:s3cretpw").decode()
        kept = runstore.get_run_row(live.service.db, job_id)["input_urls"]["source"]
        assert kept["url"] == f"http://***@{host}/private.txt?token=***&page=1"
        assert "s3cretpw" not in json.dumps(kept) and "tok4567xyz" not in json.dumps(kept)
    for path in (tmp_path / "home").glob("terrapipe.db*"):
        data = path.read_bytes()
        assert b"s3cretpw" not in data and b"tok4567xyz" not in data, path.name


@pytest.mark.parametrize(("runner", "query"), WAYS)
def test_an_async_job_whose_url_fails_ends_failed_naming_the_input(tmp_path, runner, query) -> None:
    origin = Origin(b"")
    origin.status = 404
    with origin_server(origin) as base, live_service(tmp_path, runner=runner) as live:
        url = f"{base}/missing.tif"
        r = live.http.post(
            f"/processes/count-words/execution{query}",
            json={"inputs": {"source": url}},
            headers=ASYNC,
        )
        assert r.status_code == 201, r.text
        status = _job(live.http, r.json()["jobID"], {"successful", "failed"})
        assert status["status"] == "failed"
        assert "'source'" in status["message"] and url in status["message"]
        assert "404" in status["message"]
        results = live.http.get(f"/jobs/{status['jobID']}/results")
        assert results.status_code == 400
        assert results.headers["content-type"].startswith("application/problem+json")
        assert "'source'" in results.json()["detail"] and url in results.json()["detail"]


def test_a_job_dismissed_while_its_url_downloads_never_runs(tmp_path) -> None:
    origin = Origin(b"never counted")
    origin.hold = threading.Event()
    with origin_server(origin) as base, live_service(tmp_path, runner=True) as live:
        try:
            r = live.post("count-words", {"source": f"{base}/d.txt"}, headers=ASYNC)
            job_id = r.json()["jobID"]
            _wait_for(lambda: len(origin.requests) == 1)
            assert live.http.delete(f"/jobs/{job_id}").json()["status"] == "dismissed"
        finally:
            origin.hold.set()
        from terrapipe import runs

        _wait_for(lambda: origin.bodies == 1)
        time.sleep(0.3)  # the runner has the file; it must not run the job now
        run = runs.get_run(job_id, db=live.service.db)
        assert run.state == "cancelled" and run.instances == []


def test_terrapipe_serve_runner_process_downloads_an_async_url_input(live) -> None:
    """The same through ``terrapipe serve`` (the live fixture): the job runner process
    reads the URL from the run store and downloads it; the 201 came first."""
    origin = Origin(b"a b c d e f", etag=True)
    origin.hold = threading.Event()
    with origin_server(origin) as base:
        try:
            r = httpx.post(
                f"{live.url}/processes/count-words/execution",
                json={"inputs": {"source": f"{base}/six.txt"}},
                headers=ASYNC,
                timeout=5,
            )
            assert r.status_code == 201, r.text
            assert origin.bodies == 0
            job_id = r.json()["jobID"]
            _wait_for(lambda: len(origin.requests) == 1)
        finally:
            origin.hold.set()
        with httpx.Client(base_url=live.url) as http:
            status = _job(http, job_id, {"successful", "failed"})
        assert status["status"] == "successful", status
        results = httpx.get(f"{live.url}/jobs/{job_id}/results").json()
        assert results["wc"]["value"]["words"] == _words(origin.body) == 6


@pytest.mark.postgres
@pytest.mark.e2e
def test_a_celery_service_downloads_an_async_url_input_in_the_background(tmp_path) -> None:
    """No runner process (a broker is set): a server thread downloads, then hands the run
    to a real Celery worker; the 201 came first, and a 404 URL fails the job."""
    from tests.api.conftest import serve, stop
    from tests.engines.celery_support import make_env
    from tests.pg import create_pg_database, drop_pg_database

    origin = Origin(b"one fish two fish", etag=True)
    origin.hold = threading.Event()
    pg_url = create_pg_database("tp_urlin")
    cel = make_env(tmp_path, pg_url)
    try:
        cel.start_worker("--module", FLOWS, "-c", "1")
        proc, url = serve(cel.env, "--module", FLOWS)
        try:
            with origin_server(origin) as base, httpx.Client(base_url=url, timeout=10) as http:
                try:
                    r = http.post(
                        "/processes/count-words/execution",
                        json={"inputs": {"source": f"{base}/fish.txt"}},
                        headers=ASYNC,
                    )
                    assert r.status_code == 201, r.text
                    assert origin.bodies == 0
                    job_id = r.json()["jobID"]
                    _wait_for(lambda: len(origin.requests) == 1)
                finally:
                    origin.hold.set()
                status = _job(http, job_id, {"successful", "failed"}, timeout=60)
                assert status["status"] == "successful", status
                words = http.get(f"/jobs/{job_id}/results").json()["wc"]["value"]["words"]
                assert words == _words(origin.body) == 4
                engine = cel.cli_json("runs", "show", job_id)[1]["engine"]

                origin.hold, origin.status = None, 404
                r = http.post(
                    "/processes/count-words/execution",
                    json={"inputs": {"source": f"{base}/gone.txt"}},
                    headers=ASYNC,
                )
                failed = _job(http, r.json()["jobID"], {"successful", "failed"}, timeout=60)
        finally:
            stop(proc)
    finally:
        cel.stop_all()
        drop_pg_database(pg_url)
    assert engine == "celery"
    assert failed["status"] == "failed" and "'source'" in failed["message"]
    assert "/gone.txt" in failed["message"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://", "names no host"),
        ("http://" + "a" * 70 + ".example/x.tif", "label"),
        ("http://127.0.0.1:99999/x.tif", "Port out of range"),
    ],
)
def test_a_url_no_request_could_reach_is_a_400_sync_or_async(tmp_path, url, why) -> None:
    """Refused before anything runs or is recorded, naming the input: never a 500 (an
    over-long host name made the resolver raise), never an accepted job bound to fail."""
    from terrapipe.store import runstore

    with live_service(tmp_path, runner=True) as live:
        for headers in ({}, ASYNC):
            r = live.post("count-words", {"source": url}, headers=headers)
            assert r.status_code == 400, r.text
            assert "input 'source'" in r.json()["detail"] and why in r.json()["detail"]
        assert runstore.list_run_rows(live.service.db) == []
