"""Bad requests get a 4xx JSON problem that names the culprit, never a traceback."""

from __future__ import annotations

import os

import httpx
import pytest


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


def test_unknown_process_and_job(live) -> None:
    body = _problem(httpx.get(f"{live.url}/processes/nope"), 404)
    assert body["type"].endswith("/no-such-process") and "nope" in body["detail"]
    body = _problem(httpx.get(f"{live.url}/jobs/0123456789abcdef0123456789abcdef"), 404)
    assert body["type"].endswith("/no-such-job")
    _problem(httpx.get(f"{live.url}/jobs/0123456789abcdef0123456789abcdef/results"), 404)
    body = _problem(httpx.post(f"{live.url}/processes/nope/execution", json={}), 404)
    assert body["type"].endswith("/no-such-process")


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"n": "many"}, "'n'"),  # wrong type
        ({}, "'n'"),  # missing required input
        ({"n": 1, "colour": "red"}, "'colour'"),  # unknown input
    ],
)
def test_invalid_inputs_name_the_input(live, inputs, named) -> None:
    body = _problem(
        httpx.post(f"{live.url}/processes/sums/execution", json={"inputs": inputs}), 400
    )
    assert named in body["detail"]


def test_malformed_body(live) -> None:
    r = httpx.post(
        f"{live.url}/processes/sums/execution",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    _problem(r, 400)
    body = _problem(
        httpx.post(
            f"{live.url}/processes/sums/execution", json={"inputs": {"n": 1}, "response": "x"}
        ),
        400,
    )
    assert "response" in body["detail"]


def test_paths_outside_the_data_roots_are_refused_unread(live, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    os.symlink(secret, live.data_root / "link.txt")
    jobs_before = len(httpx.get(f"{live.url}/jobs").json()["jobs"])
    for value in (
        str(secret),
        str(live.data_root / ".." / "secret.txt"),  # traversal
        str(live.data_root / "link.txt"),  # a symlink that leaves the root
        "/etc/passwd",
    ):
        r = httpx.post(
            f"{live.url}/processes/count-words/execution", json={"inputs": {"source": value}}
        )
        body = _problem(r, 403)
        assert "'source'" in body["detail"] and "data roots" in body["detail"]
    assert len(httpx.get(f"{live.url}/jobs").json()["jobs"]) == jobs_before  # nothing ran


def test_a_string_input_naming_a_local_file_is_held_to_the_roots(live) -> None:
    r = httpx.post(
        f"{live.url}/processes/clip-raster/execution",
        json={"inputs": {"raster": str(live.data_root / "x.tif"), "roi": "/etc/hostname"}},
    )
    body = _problem(r, 403)
    assert "'roi'" in body["detail"]


def test_oversized_body(live) -> None:
    big = {"inputs": {"n": 1, "pad": "x" * (2 << 20)}}
    body = _problem(httpx.post(f"{live.url}/processes/sums/execution", json=big), 413)
    assert "TERRAPIPE_API_MAX_BODY" in body["detail"]


def test_unknown_query_parameter_on_items(live) -> None:
    r = httpx.get(f"{live.url}/collections/none/items", params={"colour": "red"})
    body = _problem(r, 400)
    assert "'colour'" in body["detail"]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}], ids=["none", "text"])
@pytest.mark.parametrize("prefer", [None, "respond-async"])
def test_a_body_that_is_not_json_says_what_to_send(live, headers, prefer) -> None:
    """Sync or async, without a JSON content type the body is refused the same way, and
    the message says what to send; nothing is recorded."""
    before = len(httpx.get(f"{live.url}/jobs").json()["jobs"])
    if prefer:
        headers = {**headers, "Prefer": prefer}
    r = httpx.post(
        f"{live.url}/processes/sums/execution", content=b'{"inputs": {"n": 2}}', headers=headers
    )
    body = _problem(r, 400)
    assert "Content-Type: application/json" in body["detail"]
    assert len(httpx.get(f"{live.url}/jobs").json()["jobs"]) == before
