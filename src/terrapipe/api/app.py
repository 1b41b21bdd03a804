"""The FastAPI application: OGC API – Processes for workflows and jobs, OGC API – Features
for published layers. Handlers are thin: parse, validate, call ``terrapipe.runs`` or a
domain function, answer (DESIGN.md section 8).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from terrapipe.api import errors
from terrapipe.api.hotpaths import HotPaths
from terrapipe.api.routers import collections, jobs, landing, processes
from terrapipe.api.service import Service
from terrapipe.core.owner import Owner
from terrapipe.settings import Settings, get_settings
from terrapipe.store.db import Database, open_database


class BodyLimit:
    """Refuse a request body larger than ``limit`` bytes with 413, before reading it all."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = errors.problem(
            413,
            f"{errors.TERRAPIPE_EXCEPTIONS}/body-too-large",
            "request body too large",
            f"the request body is larger than {self.limit} bytes (TERRAPIPE_API_MAX_BODY)",
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    modules: Iterable[str] = (),
    runner: Owner | None = None,
) -> FastAPI:
    """The service application over ``db`` (default: the settings' database).

    ``runner``: the process that executes local jobs (``terrapipe serve`` starts one); without
    it an async job runs in a background thread of this process."""
    settings = settings or get_settings()
    database = db or open_database(settings)
    app = FastAPI(
        title="terrapipe",
        version="0.1.0",
        description="OGC API – Processes (workflows, jobs) and OGC API – Features (layers).",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.service = Service(
        settings=settings, db=database, modules=tuple(modules), runner=runner
    )
    errors.install(app)
    for module in (landing, processes, jobs, collections):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=settings.api_max_body)
    app.add_middleware(HotPaths, service=app.state.service)  # outermost: see its docstring

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = collections.standard_parameters(errors.document_errors(document))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    return app


def app_from_environment() -> FastAPI:
    """The app ``terrapipe serve`` runs in each worker process: settings from the
    environment, user modules from ``TERRAPIPE_SERVE_MODULES``, the job runner from
    ``TERRAPIPE_SERVE_RUNNER``."""
    import os

    from terrapipe.api.runner import MODULES_ENV, RUNNER_ENV, owner_from_env

    modules = [m for m in os.environ.get(MODULES_ENV, "").split(os.pathsep) if m]
    app = create_app(modules=modules, runner=owner_from_env(os.environ.get(RUNNER_ENV)))
    _ = app.state.service.registry  # load the workflows now, not in the first request
    # what startup made lives as long as the process: keep it out of the collector's
    # full passes, which otherwise stall every request for tens of milliseconds
    gc.collect()
    gc.freeze()
    return app
