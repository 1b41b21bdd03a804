"""Bearer tokens for writes: execution and dismiss need one when ``TERRAPIPE_AUTH=on``."""

from __future__ import annotations

from fastapi import Depends, Request

from terrapipe.api.errors import ApiError
from terrapipe.api.service import Service, get_service
from terrapipe.api.tokens import verify_token


async def require_token(request: Request, service: Service = Depends(get_service)) -> str | None:
    """The caller's token name, or None when auth is off; 401 when it is missing or wrong.
    Async: the check is one indexed query, cheaper inline than a hop to a thread."""
    return token_name(service, request.headers.get("authorization"))


def token_name(service: Service, authorization: str | None) -> str | None:
    """The name of the token in an ``Authorization`` header, or None when auth is off;
    :class:`ApiError` 401 when it is missing or wrong."""
    if not service.settings.auth:
        return None
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("this operation needs a bearer token (Authorization: Bearer TOKEN)")
    name = verify_token(service.db, token.strip())
    if name is None:
        raise _unauthorized("the bearer token is not valid (unknown or revoked)")
    return name


def _unauthorized(detail: str) -> ApiError:
    err = ApiError(401, "unauthorized", detail, title="unauthorized")
    err.headers = {"WWW-Authenticate": 'Bearer realm="terrapipe"'}
    return err
