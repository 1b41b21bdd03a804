"""The plain-ASGI front (``terrapipe.api.hotpaths``): it answers ordinary async submits and
status reads exactly as the FastAPI routes do, and hands everything unusual to them.

In process (the app through httpx's ASGI transport); the live-server tests cover the same
requests over HTTP. Jobs are recorded for a runner (this process) that never runs them:
what is checked is the answer and the run store, not the execution.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from terrapipe.api.app import create_app
from terrapipe.api.hotpaths import HotPaths
from terrapipe.api.tokens import create_token
from terrapipe.core.owner import current_owner
from terrapipe.settings import get_settings
from terrapipe.store.db import open_database

FLOWS = str(Path(__file__).with_name("flows.py"))
ASYNC = {"Prefer": "respond-async"}


def _app(tmp_path: Path, **settings: object):
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    conf = get_settings(home=tmp_path / "home", data_roots=str(root), **settings)
    db = open_database(conf)
    return create_app(conf, db=db, modules=[FLOWS], runner=current_owner()), db, root


def _run_count(db) -> int:
    import sqlalchemy as sa

    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()


def _without_front(app):
    """The same application over the same database, without the front: every request
    through FastAPI's routes."""
    service = app.state.service
    plain = create_app(service.settings, db=service.db, modules=[FLOWS], runner=service.runner)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not HotPaths]
    return plain


async def _both(app, method: str, path: str, **kw) -> tuple[httpx.Response, httpx.Response]:
    """The same request through the whole app (front first) and through FastAPI alone."""
    base = "http://testserver"
    plain_app = _without_front(app)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as whole,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=plain_app), base_url=base) as plain,
    ):
        return await whole.request(method, path, **kw), await plain.request(method, path, **kw)


def _comparable(doc: dict) -> dict:
    """A status document without what differs between two jobs (ids, times, links)."""
    volatile = {"jobID", "created", "updated", "links"}
    return {k: v for k, v in doc.items() if k not in volatile}


def test_submit_and_status_answer_as_the_fastapi_routes_do(tmp_path) -> None:
    app, db, _ = _app(tmp_path)
    body = {"inputs": {"n": 4, "scale": 0.5}}
    hot, plain = asyncio.run(
        _both(app, "POST", "/processes/sums/execution", json=body, headers=ASYNC)
    )
    assert hot.status_code == plain.status_code == 201
    assert hot.headers["preference-applied"] == plain.headers["preference-applied"]
    assert hot.headers["location"].endswith(f"/jobs/{hot.json()['jobID']}")
    assert _comparable(hot.json()) == _comparable(plain.json())
    assert hot.json()["status"] == "accepted"
    assert _run_count(db) == 2

    job = hot.json()["jobID"]
    hot_s, plain_s = asyncio.run(_both(app, "GET", f"/jobs/{job}"))
    assert hot_s.status_code == plain_s.status_code == 200
    assert hot_s.json() == plain_s.json()
    assert hot_s.json()["jobID"] == job and hot_s.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"),
    [
        ("/processes/nope/execution", b'{"inputs": {}}', 404, "no-such-process"),
        ("/processes/sums/execution", b'{"inputs": ', 400, "invalid-request"),
        ("/processes/sums/execution", b'{"inputs": {"n": "many"}}', 400, "invalid"),
        ("/processes/sums/execution", b'{"inputs": {}, "response": "zip"}', 400, "invalid"),
        ("/processes/count-words/execution", b'{"inputs": {"source": "/etc/passwd"}}', 403, ""),
    ],
)
def test_unusual_submits_get_the_fastapi_error_and_record_nothing(
    tmp_path, path, body, status, kind
) -> None:
    app, db, _ = _app(tmp_path)
    headers = {**ASYNC, "Content-Type": "application/json"}
    hot, plain = asyncio.run(_both(app, "POST", path, content=body, headers=headers))
    assert hot.status_code == status, hot.text
    assert hot.json() == plain.json()
    assert kind in hot.json()["type"]
    assert "Traceback" not in hot.text
    assert _run_count(db) == 0


def test_tokens_are_checked_on_the_hot_path_too(tmp_path) -> None:
    app, db, _ = _app(tmp_path, auth=True)
    token = create_token(db, "ci")
    body = {"inputs": {"n": 2}}

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            url = "/processes/sums/execution"
            return [
                await client.post(url, json=body, headers=ASYNC),
                await client.post(url, json=body, headers={**ASYNC, "Authorization": "Bearer x"}),
                await client.post(
                    url, json=body, headers={**ASYNC, "Authorization": f"Bearer {token}"}
                ),
            ]

    missing, wrong, good = asyncio.run(go())
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert good.status_code == 201
    assert _run_count(db) == 1


def test_an_oversized_body_is_refused_with_413(tmp_path) -> None:
    app, db, _ = _app(tmp_path, api_max_body=1000)
    body = b'{"inputs": {"n": 3, "pad": "' + b"x" * 5000 + b'"}}'

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                "/processes/sums/execution",
                content=body,
                headers={**ASYNC, "Content-Type": "application/json"},
            )

    answer = asyncio.run(go())
    assert answer.status_code == 413 and "TERRAPIPE_API_MAX_BODY" in answer.json()["detail"]
    assert _run_count(db) == 0


class _Behind:
    """The app behind the front: counts what reaches it, answers 299."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope["method"], scope["path"], body))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"behind"})


def test_the_front_passes_on_what_it_does_not_answer_with_the_body_intact(tmp_path) -> None:
    app, db, _ = _app(tmp_path)
    service = app.state.service
    behind = _Behind()
    front = HotPaths(behind, service)
    job = "0" * 32

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=front)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                (
                    await client.post(
                        "/processes/sums/execution", json={"inputs": {"n": 1}}, headers=ASYNC
                    )
                ).status_code,  # answered by the front
                (await client.post("/processes/sums/execution", content=b"{bad")).status_code,
                (
                    await client.post("/processes/sums/execution", json={"inputs": {"n": 1}})
                ).status_code,  # synchronous: not the front's
                (await client.get(f"/jobs/{job}")).status_code,  # no such job
                (await client.get("/jobs?limit=1")).status_code,
                (await client.get("/conformance")).status_code,
            ]

    codes = asyncio.run(go())
    assert codes == [201, 299, 299, 299, 299, 299]
    assert [(m, p) for m, p, _ in behind.seen] == [
        ("POST", "/processes/sums/execution"),
        ("POST", "/processes/sums/execution"),
        ("GET", f"/jobs/{job}"),
        ("GET", "/jobs"),
        ("GET", "/conformance"),
    ]
    assert behind.seen[0][2] == b"{bad"  # the body it read is replayed whole
    assert behind.seen[1][2] == b'{"inputs":{"n":1}}'
    assert _run_count(db) == 1
