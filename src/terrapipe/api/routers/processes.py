"""OGC API – Processes: the process list, one process, and execution (sync or async)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from terrapipe import runs
from terrapipe.api.auth import require_token, token_name
from terrapipe.api.describe import job_status, process_description, process_summary
from terrapipe.api.errors import ApiError
from terrapipe.api.inputs import fetch_url, needs_fetch, resolve_inputs, url_target
from terrapipe.api.responses import JSON, json_response
from terrapipe.api.results import raw_outputs, results_document
from terrapipe.api.routers.landing import base_url
from terrapipe.api.service import Service, get_service

router = APIRouter(tags=["processes"])


class ExecuteRequest(BaseModel):
    """The body of an execution request (OGC API – Processes ``execute.yaml``)."""

    model_config = ConfigDict(extra="allow")

    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    response: Literal["raw", "document"] = "document"


@router.get("/processes", operation_id="getProcesses", summary="The processes offered")
def list_processes(
    request: Request,
    limit: int = Query(default=100, ge=1, le=10_000),
    service: Service = Depends(get_service),
) -> dict:
    base = base_url(request)
    workflows = service.registry.all()[:limit]
    return {
        "processes": [process_summary(wf, base) for wf in workflows],
        "links": [{"href": f"{base}/processes", "rel": "self", "type": "application/json"}],
    }


@router.get(
    "/processes/{processID}",
    operation_id="getProcessDescription",
    summary="A process: its inputs and outputs",
)
def describe_process(
    processID: str,  # noqa: N803 - the standard's name
    request: Request,
    service: Service = Depends(get_service),
) -> dict:
    return process_description(service.workflow(processID), base_url(request))


def _wants_async(prefer: str | None) -> bool:
    return any(p.strip().lower() == "respond-async" for p in (prefer or "").split(","))


@router.post(
    "/processes/{processID}/execution",
    operation_id="execute",
    summary="Run a process: synchronous, or a job with `Prefer: respond-async`",
    status_code=200,
    response_class=Response,
)
async def execute(
    processID: str,  # noqa: N803
    body: ExecuteRequest,
    request: Request,
    prefer: str | None = Header(default=None),
    service: Service = Depends(get_service),
    _token: str | None = Depends(require_token),
) -> Response:
    workflow = service.workflow(processID)
    base = base_url(request)
    quick = service.runner is not None and not needs_fetch(workflow, body.inputs)
    if quick and _wants_async(prefer):
        # the hot path: check the inputs, record the job for the runner process, answer;
        # a few quick queries, inline (no hop to a thread)
        params = resolve_inputs(
            workflow, body.inputs, service.data_roots, catalog=service.catalog_path
        )
        return await _hand_to_runner(service, workflow, params, base)
    return await run_in_threadpool(_execute, workflow, body, prefer, base, service)


async def quick_submit(
    service: Service,
    process: str,
    body: bytes,
    *,
    content_type: str,
    prefer: str | None,
    authorization: str | None,
    base: str,
) -> Response | None:
    """The 201 of an ordinary async submit (a runner process, JSON inputs that need no
    download, a valid token when auth is on); None for anything else, which the FastAPI
    route then answers, errors included. Called by :mod:`terrapipe.api.hotpaths`; nothing
    is recorded before every check has passed."""
    kind = content_type.partition(";")[0].strip().lower()
    if service.runner is None or not _wants_async(prefer) or kind != JSON:
        return None
    try:
        token_name(service, authorization)
        request = ExecuteRequest.model_validate_json(body)
        workflow = service.workflow(process)
        if needs_fetch(workflow, request.inputs):
            return None
        params = resolve_inputs(
            workflow, request.inputs, service.data_roots, catalog=service.catalog_path
        )
        row = runs.queued_record(workflow, params, runner=service.runner, settings=service.settings)
    except Exception:  # noqa: BLE001 - the FastAPI route answers it, with the right error
        return None
    return await _record_for_runner(service, row, base)


async def _hand_to_runner(
    service: Service, workflow: Any, params: dict[str, Any], base: str
) -> Response:
    """Record the job for the runner process and answer 201."""
    row = runs.queued_record(workflow, params, runner=service.runner, settings=service.settings)
    return await _record_for_runner(service, row, base)


async def _record_for_runner(service: Service, row: dict[str, Any], base: str) -> Response:
    """The insert may wait for SQLite's write lock (the runner records nodes): the
    service's recorder thread commits it with the others waiting, off the event loop."""
    run = await service.recorder.record(row)
    return _accepted(run, base)


def _accepted(run: Any, base: str) -> Response:
    """201 with the new job's status and its address."""
    return json_response(
        job_status(run, base),
        status_code=201,
        headers={"Location": f"{base}/jobs/{run.id}", "Preference-Applied": "respond-async"},
    )


def _execute(
    workflow: Any, body: ExecuteRequest, prefer: str | None, base: str, service: Service
) -> Response:
    """Execution that may wait (a URL input to download, a synchronous run, no runner
    process): in a thread of the pool."""
    params = resolve_inputs(
        workflow,
        body.inputs,
        service.data_roots,
        catalog=service.catalog_path,
        fetch=lambda name, url: fetch_url(
            name,
            url,
            url_target(url, service.settings.home_dir / "inputs"),
            max_bytes=service.max_download,
        ),
    )
    wanted = list(body.outputs) if body.outputs else None
    common = {"db": service.db, "settings": service.settings, "engine": service.engine}
    if _wants_async(prefer):
        if service.runner is not None:
            run = runs.submit(workflow, params, runner=service.runner, **common)
        else:
            run = runs.submit(workflow, params, wait=False, **common)
        return _accepted(run, base)
    run = runs.submit(workflow, params, wait=True, **common)
    run = runs.get_run(run.id, db=service.db)
    if run.state != "succeeded":
        raise job_failed(run)
    job_url = f"{base}/jobs/{run.id}"
    headers = {"Location": job_url}
    if body.response == "raw":
        return raw_response(run, workflow, wanted, service, headers)
    doc = results_document(run, workflow, job_url, service.settings.artifacts_dir)
    if wanted:
        unknown = sorted(set(wanted) - set(doc))
        if unknown:
            raise ApiError(
                400,
                "invalid-input",
                f"unknown output {unknown[0]!r}; outputs: " + ", ".join(sorted(doc)),
            )
        doc = {k: v for k, v in doc.items() if k in wanted}
    return JSONResponse(doc, headers=headers)


def job_failed(run: Any) -> ApiError:
    """The error of a failed job: 400 when it failed on its input, else 500."""
    failed = [i for i in run.instances if i.state == "failed"]
    detail = "; ".join(f"{i.key}: {i.error}" for i in failed[:3]) or (run.error or run.state)
    if run.failed_on_input:
        return ApiError(400, "invalid-input", f"job {run.id} failed on its input: {detail}")
    return ApiError(500, "job-failed", f"job {run.id} {run.state}: {detail}", title="job failed")


def raw_response(
    run: Any, workflow: Any, wanted: list[str] | None, service: Service, headers: dict
) -> Response:
    """``response: raw``: the one output's value itself (a file's bytes for a file)."""
    from pathlib import Path

    outputs = raw_outputs(run, workflow)
    names = wanted or list(outputs)
    if len(names) != 1 or names[0] not in outputs:
        raise ApiError(
            400,
            "invalid-input",
            "response=raw needs exactly one output; name it in `outputs` (outputs: "
            + ", ".join(sorted(outputs))
            + ")",
        )
    value = outputs[names[0]]
    if isinstance(value, Path):
        from terrapipe.api.inputs import inside
        from terrapipe.api.results import media_type

        path = value.resolve()
        if inside(path, [service.settings.artifacts_dir.resolve()]) and path.is_file():
            return FileResponse(path, media_type=media_type(path), headers=headers)
        value = str(value)
    return JSONResponse(value, headers=headers)
