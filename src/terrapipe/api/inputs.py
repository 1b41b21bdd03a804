"""File inputs of a request: resolved against the service's data roots, refused otherwise.

A request may name a file as a path inside one of the data roots (after resolving ``..``
and symlinks), an ``http(s)`` URL, or ``catalog:ENTRY_ID`` (a downloaded catalog dataset).
Any other path is refused with 403 naming the input, and never opened. A string
parameter that happens to name an existing local file (an ROI given as a vector file) is
held to the same rule.

A URL input is handed to the ``fetch`` callable the caller gives: the download itself is
transfer work (:mod:`terrapipe.transfer.url_inputs`). A synchronous execution downloads
in the request (the client waits anyway, :func:`~terrapipe.transfer.url_inputs.fetch_url`);
an async job is recorded at once with the local path as its parameter and the URL noted
with the run (:class:`~terrapipe.transfer.url_inputs.LaterFetches`), and whoever executes
it downloads first (:func:`terrapipe.runs.fetch_inputs`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from terrapipe.api.errors import ApiError
from terrapipe.core.workflow import Workflow
from terrapipe.transfer.url_inputs import URL_SCHEMES


def plain_value(value: Any) -> Any:
    """An OGC input value: ``{"value": v}`` and ``{"href": url}`` forms unwrapped."""
    if isinstance(value, Mapping):
        if "href" in value and isinstance(value["href"], str):
            return value["href"]
        if "value" in value:
            return value["value"]
    return value


def inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def check_path(name: str, value: str, roots: list[Path]) -> Path:
    """The resolved path of an input, if it is inside a data root; else 403."""
    if "\x00" in value:
        raise ApiError(400, "invalid-input", f"input {name!r}: a path may not contain NUL")
    resolved = Path(value).expanduser().resolve()
    if not inside(resolved, roots):
        raise ApiError(
            403,
            "forbidden-input",
            f"input {name!r}: {value!r} is outside the service's data roots; name a file "
            "inside TERRAPIPE_DATA_ROOTS or pass an http(s) URL",
            title="input outside the data roots",
        )
    return resolved


def _looks_like_local_file(value: str) -> bool:
    if value.startswith(URL_SCHEMES) or "\x00" in value or len(value) > 4096:
        return False
    try:
        return os.path.lexists(os.path.expanduser(value))
    except (OSError, ValueError):
        return False


def resolve_inputs(
    workflow: Workflow,
    inputs: Mapping[str, Any],
    roots: list[Path],
    *,
    catalog: Any = None,
    fetch: Any = None,
) -> dict[str, Any]:
    """Run parameters from a request's inputs; file inputs checked against ``roots``.

    ``catalog``: a callable ``entry_id -> local path or None`` for ``catalog:`` inputs;
    ``fetch``: a callable ``(name, url) -> local path`` for URL inputs.
    """
    declared = workflow.params
    params: dict[str, Any] = {}
    for name, raw in inputs.items():
        value = plain_value(raw)
        param = declared.get(name)
        if param is not None and param.type is Path and isinstance(value, str):
            if value.startswith(URL_SCHEMES):
                if fetch is None:
                    raise ApiError(400, "invalid-input", f"input {name!r}: URLs are not accepted")
                params[name] = str(fetch(name, value))
                continue
            if value.startswith("catalog:"):
                params[name] = _catalog_path(name, value, catalog, roots)
                continue
            params[name] = str(check_path(name, value, roots))
            continue
        if isinstance(value, str) and _looks_like_local_file(value):
            params[name] = str(check_path(name, value, roots))
            continue
        params[name] = value
    return params


def _catalog_path(name: str, value: str, catalog: Any, roots: list[Path]) -> str:
    entry_id = value.split(":", 1)[1]
    local = catalog(entry_id) if catalog is not None else None
    if not local:
        raise ApiError(
            400,
            "invalid-input",
            f"input {name!r}: catalog dataset {entry_id!r} has no downloaded file; run "
            f"`terrapipe download` for it first",
        )
    return str(local)
