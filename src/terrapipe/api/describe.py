"""Workflows as OGC API – Processes descriptions, and runs as job status documents.

Pure functions from terrapipe objects to the JSON the standard defines: no I/O, no
FastAPI. The process id is the workflow name; ``NAME@VERSION`` picks a version.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from terrapipe.core.task import REQUIRED, Param
from terrapipe.core.workflow import Workflow

JOB_CONTROL = ["sync-execute", "async-execute", "dismiss"]
TRANSMISSION = ["value", "reference"]

# run state -> OGC job status
JOB_STATUS = {
    "queued": "accepted",
    "running": "running",
    "succeeded": "successful",
    "failed": "failed",
    "interrupted": "failed",
    "cancelled": "dismissed",
    "expired": "dismissed",
}


def json_schema(param: Param) -> dict[str, Any]:
    """The JSON Schema of a declared parameter."""
    kind = param.type
    schema: dict[str, Any]
    if kind is bool:
        schema = {"type": "boolean"}
    elif kind is int:
        schema = {"type": "integer"}
    elif kind is float:
        schema = {"type": "number"}
    elif kind is Path:
        schema = {"type": "string", "format": "uri-reference"}
    elif kind is dt.date:
        schema = {"type": "string", "format": "date"}
    elif kind is dt.datetime:
        schema = {"type": "string", "format": "date-time"}
    elif kind is list:
        schema = {"type": "array"}
    elif kind is dict:
        schema = {"type": "object"}
    else:
        schema = {"type": "string"}
    if param.default is not REQUIRED and param.default is not None:
        default = param.default
        schema["default"] = str(default) if isinstance(default, Path) else default
    return schema


def input_description(name: str, param: Param) -> dict[str, Any]:
    text = param.help or name
    if param.type is Path:
        text += (
            " (a path inside the service's data roots, or an http(s) URL; other paths are refused)"
        )
    return {
        "title": name,
        "description": text,
        "schema": json_schema(param),
        "minOccurs": 1 if param.required else 0,
        "maxOccurs": 1,
    }


def sink_nodes(workflow: Workflow) -> list[str]:
    """The nodes nothing reads: their outputs are the process's outputs."""
    down = workflow.downstream()
    return [n for n in workflow.topological_order() if not down[n]]


def process_summary(workflow: Workflow, base: str) -> dict[str, Any]:
    pid = workflow.name
    return {
        "id": pid,
        "title": pid,
        "description": workflow.description or "",
        "version": str(workflow.version),
        "keywords": [workflow.category] if workflow.category else [],
        "jobControlOptions": JOB_CONTROL,
        "outputTransmission": TRANSMISSION,
        "links": [
            {
                "href": f"{base}/processes/{pid}",
                "rel": "self",
                "type": "application/json",
                "title": "process description",
            },
            {
                "href": f"{base}/processes/{pid}/execution",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/execute",
                "type": "application/json",
                "title": "execute",
            },
        ],
    }


def process_description(workflow: Workflow, base: str) -> dict[str, Any]:
    out = process_summary(workflow, base)
    out["inputs"] = {name: input_description(name, p) for name, p in workflow.params.items()}
    out["outputs"] = {
        name: {
            "title": name,
            "description": f"what node {name!r} returns (files as links)",
            "schema": {},
        }
        for name in sink_nodes(workflow)
    }
    return out


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def job_status(run: Any, base: str) -> dict[str, Any]:
    """The OGC statusInfo of a run (``run`` is a :class:`terrapipe.runs.Run`)."""
    status = JOB_STATUS.get(run.state, "failed")
    updated = run.finished_at or run.started_at or run.created_at
    links = [
        {"href": f"{base}/jobs/{run.id}", "rel": "self", "type": "application/json"},
    ]
    if status == "successful":
        links.append(
            {
                "href": f"{base}/jobs/{run.id}/results",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/results",
                "type": "application/json",
                "title": "results",
            }
        )
    message = run.error or {
        "accepted": "queued",
        "running": "running",
        "successful": "finished",
        "dismissed": "dismissed",
        "failed": "failed",
    }.get(status, run.state)
    return {
        "jobID": run.id,
        "processID": run.workflow,
        "type": "process",
        "status": status,
        "message": message,
        "created": _iso(run.created_at),
        "started": _iso(run.started_at),
        "finished": _iso(run.finished_at),
        "updated": _iso(updated),
        "progress": max(0, min(100, round(float(run.progress or 0) * 100))),
        "links": links,
    }
