"""Errors at the edge of the HTTP service: one table from domain errors to HTTP statuses.

Every error body is JSON ``{type, title, status, detail}`` (RFC 7807, as OGC API –
Processes asks). Domain code raises terrapipe errors and never knows about HTTP; handlers
raise :class:`ApiError` only for what exists at the HTTP level (an unknown job id, a
result asked for too early, a missing token).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from terrapipe import errors

log = logging.getLogger("terrapipe.api")

OGC_EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0"
TERRAPIPE_EXCEPTIONS = "https://terrapipe.dev/errors"

# One table: domain error class -> (HTTP status, error type). The first match wins.
STATUS_FOR: tuple[tuple[type[BaseException], int, str], ...] = (
    (errors.WorkflowNotFound, 404, f"{OGC_EXCEPTIONS}/no-such-process"),
    (errors.RunNotFound, 404, f"{OGC_EXCEPTIONS}/no-such-job"),
    (errors.NotFound, 404, f"{TERRAPIPE_EXCEPTIONS}/not-found"),
    (errors.ParameterError, 400, f"{TERRAPIPE_EXCEPTIONS}/invalid-parameter"),
    (errors.InvalidInput, 400, f"{TERRAPIPE_EXCEPTIONS}/invalid-input"),
    (errors.Cancelled, 409, f"{TERRAPIPE_EXCEPTIONS}/cancelled"),
    (errors.StoreError, 503, f"{TERRAPIPE_EXCEPTIONS}/store-unavailable"),
    (errors.TerrapipeError, 500, f"{TERRAPIPE_EXCEPTIONS}/internal"),
)


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}

# The errors each operation can answer with, as documented in the OpenAPI document.
DOCUMENTED = {
    400: "Bad request: the detail names the parameter or input",
    404: "No such process, job, collection or feature",
}
WRITE_ERRORS = {
    401: "A bearer token is needed (TERRAPIPE_AUTH=on)",
    403: "A file input outside the service's data roots",
    409: "The job already finished",
    413: "The request body is too large",
}


def document_errors(openapi: dict) -> dict:
    """Declare the problem responses in an OpenAPI document: FastAPI's 422 becomes the 400
    this service answers, and writes list their 401/403/409/413."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    ref = {"$ref": "#/components/schemas/Problem"}
    for methods in openapi.get("paths", {}).values():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = dict(DOCUMENTED)
            if method in ("post", "delete"):
                codes.update(WRITE_ERRORS)
            for code, text in codes.items():
                responses.setdefault(
                    str(code),
                    {"description": text, "content": {"application/problem+json": {"schema": ref}}},
                )
    return openapi


class ApiError(Exception):
    """An HTTP-level error: status, a short title, the detail naming the culprit."""

    def __init__(self, status: int, kind: str, detail: str, *, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.type = kind if kind.startswith("http") else f"{OGC_EXCEPTIONS}/{kind}"
        self.title = title or kind.replace("-", " ")
        self.detail = detail
        self.headers: dict[str, str] = {}


def problem(status: int, kind: str, title: str, detail: str) -> JSONResponse:
    """The one error body."""
    return JSONResponse(
        {"type": kind, "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def status_for(exc: BaseException) -> tuple[int, str]:
    for cls, status, kind in STATUS_FOR:
        if isinstance(exc, cls):
            return status, kind
    return 500, f"{TERRAPIPE_EXCEPTIONS}/internal"


def domain_problem(exc: errors.TerrapipeError) -> JSONResponse:
    """The answer to a domain error, from the one table (:data:`STATUS_FOR`)."""
    status, kind = status_for(exc)
    if status >= 500:
        log.error("request failed: %s", exc)
    return problem(status, kind, _title(kind), str(exc))


def _title(kind: str) -> str:
    return kind.rsplit("/", 1)[-1].replace("-", " ")


def install(app: FastAPI) -> None:
    """Register the handlers: API errors, domain errors, request validation, HTTP errors
    and, last, anything unexpected (logged, answered without a traceback)."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        response = problem(exc.status, exc.type, exc.title, exc.detail)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(errors.TerrapipeError)
    async def _domain_error(_request: Request, exc: errors.TerrapipeError) -> JSONResponse:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            where = ".".join(str(p) for p in loc if p not in ("body", "query"))
            message = err.get("msg", "invalid")
            if loc == ("body",):  # no JSON object at all: say what to send
                where = "request body"
                message += " (send a JSON object with Content-Type: application/json)"
            parts.append(f"{where or 'request'}: {message}")
        return problem(
            400, f"{TERRAPIPE_EXCEPTIONS}/invalid-request", "invalid request", "; ".join(parts)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = f"{TERRAPIPE_EXCEPTIONS}/http-{exc.status_code}"
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        response = problem(exc.status_code, kind, _title(kind), detail)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in a request")
        return problem(
            500,
            f"{TERRAPIPE_EXCEPTIONS}/internal",
            "internal error",
            f"the server failed ({type(exc).__name__}); the log has the details",
        )
