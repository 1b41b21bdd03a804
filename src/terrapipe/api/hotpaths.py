"""A plain-ASGI front for the two requests a polling client repeats: an async submit and a
job's status.

Under load these two are nearly every request, and FastAPI's routing, dependency solving
and middleware stack cost more than the work itself (a few hundred microseconds against
one indexed read or one recorded row). This front answers the ordinary case of each with
the very functions the FastAPI routes call, and hands every other request, and every
unusual one of these two (a query string, a missing job, an input to refuse, a token to
check against, a body to reject), to the FastAPI application untouched: so errors,
validation and the OpenAPI document stay in one place, FastAPI's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terrapipe.api.errors import domain_problem
from terrapipe.api.routers.jobs import status_response
from terrapipe.api.routers.landing import base_url
from terrapipe.api.routers.processes import quick_submit
from terrapipe.api.service import Service
from terrapipe.errors import TerrapipeError

STATUS_PATH = re.compile(r"/jobs/([0-9a-f]{32})")
EXECUTE_PATH = re.compile(r"/processes/([^/]+)/execution")

Answer = Callable[[Scope, Receive, Send], Awaitable[None]]


class HotPaths:
    """Answers an async submit and a status read directly; passes on everything else."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
            answer = self._status(scope, match.group(1))
            if answer is not None:
                await answer(scope, receive, send)
                return
        elif method == "POST" and (match := EXECUTE_PATH.fullmatch(path)):
            await self._execute(scope, receive, send, match.group(1))
            return
        await self.app(scope, receive, send)

    def _status(self, scope: Scope, job_id: str) -> Answer | None:
        try:
            return status_response(self.service, job_id, base_url(Request(scope)))
        except TerrapipeError as exc:  # the store cannot be read
            return domain_problem(exc)

    async def _execute(self, scope: Scope, receive: Receive, send: Send, process: str) -> None:
        body, more, whole = await _read_body(receive, self.service.settings.api_max_body)
        if whole:
            request = Request(scope)
            try:
                answer = await quick_submit(
                    self.service,
                    process,
                    body,
                    content_type=request.headers.get("content-type", ""),
                    prefer=request.headers.get("prefer"),
                    authorization=request.headers.get("authorization"),
                    base=base_url(request),
                )
            except TerrapipeError as exc:  # recording failed (the store is down, say)
                answer = domain_problem(exc)
            if answer is not None:
                await answer(scope, receive, send)
                return
        await self.app(scope, _replay(body, more, receive), send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool, bool]:
    """What was read of the request body (at most ``limit`` bytes and one chunk), whether
    more is left unread, and whether it is the whole body within the limit. A body too
    large, or a client gone, is left to FastAPI's stack, which refuses it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
        if size > limit:
            return b"".join(chunks), more, False
        if not more:
            return b"".join(chunks), False, True


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then the rest from ``receive``."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
