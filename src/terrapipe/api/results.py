"""A finished run's outputs as an OGC results document: files become links the API serves.

Pure: takes the run (``terrapipe.runs.Run``) and where its artifacts live, returns JSON.
A file output is served only from under the artifact root, at
``/jobs/{id}/files/{cache key}/{path in the artifact folder}``.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from terrapipe.api.describe import sink_nodes
from terrapipe.core.workflow import Workflow

MEDIA_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".tiff": "image/tiff; application=geotiff",
    ".parquet": "application/vnd.apache.parquet",
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".csv": "text/csv",
    ".json": "application/json",
    ".png": "image/png",
}


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower()) or (
        mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )


def file_link(path: Path, job_url: str, artifacts_root: Path) -> dict[str, Any] | str:
    """A link to an artifact file, or the path as text when it is not an artifact."""
    try:
        rel = path.resolve().relative_to(artifacts_root.resolve())
    except ValueError:
        return str(path)
    return {"href": f"{job_url}/files/{rel.as_posix()}", "type": media_type(path)}


def linked(value: Any, job_url: str, artifacts_root: Path) -> Any:
    """``value`` with every path replaced by a link."""
    if isinstance(value, Path):
        return file_link(value, job_url, artifacts_root)
    if isinstance(value, dict):
        return {k: linked(v, job_url, artifacts_root) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [linked(v, job_url, artifacts_root) for v in value]
    return value


def raw_outputs(run: Any, workflow: Workflow | None) -> dict[str, Any]:
    """Output id -> value (a list for a mapped node) of the run's sink nodes."""
    nodes = run.nodes
    names = sink_nodes(workflow) if workflow is not None else list(nodes)
    out: dict[str, Any] = {}
    for name in names:
        view = nodes.get(name)
        if view is None:
            continue
        if isinstance(view, list):
            out[name] = [v.outputs for v in view if v.state in ("succeeded", "cached")]
        elif view.state in ("succeeded", "cached"):
            out[name] = view.outputs
        else:
            out[name] = None
    return out


def results_document(
    run: Any, workflow: Workflow | None, job_url: str, artifacts_root: Path
) -> dict[str, Any]:
    """Output id -> its value as OGC API – Processes 1.0 ``results.yaml`` allows: a plain
    value, a link (a file), or an object wrapped as ``{"value": {...}}`` (a bare object is
    not allowed, and clients generated from the schema cannot read one).

    An output with no value (its node was skipped as not applicable, or returned None) is
    left out: the schema has no form for null. ``response: raw`` still gives it as null."""
    return {
        k: _inline_or_ref(linked(v, job_url, artifacts_root))
        for k, v in raw_outputs(run, workflow).items()
        if v is not None
    }


def _inline_or_ref(value: Any) -> Any:
    if isinstance(value, dict) and "href" not in value:
        return {"value": value}
    return value
