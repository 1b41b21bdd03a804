"""JSON answers serialised once with orjson, skipping FastAPI's response-model pass.

The hot paths (a job's status, a job submitted) return a plain JSON document; encoding it
directly costs microseconds, where validating and re-encoding through a response model
cost a large part of a request.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"
OBJECT_200 = {200: {"content": {JSON: {"schema": {"type": "object"}}}}}  # for OpenAPI


def json_response(
    document: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``document`` as an ``application/json`` response."""
    return Response(
        orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS),
        status_code=status_code,
        headers=headers,
        media_type=JSON,
    )
