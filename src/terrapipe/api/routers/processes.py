"""OGC API – Processes: the process list, one process, and execution (sync or async)."""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from terrapipe import runs
from terrapipe.api.auth import require_token, token_name
from terrapipe.api.describe import job_status, process_description, process_summary, sink_nodes
from terrapipe.api.errors import ApiError
from terrapipe.api.inputs import resolve_inputs
from terrapipe.api.responses import JSON, json_response
from terrapipe.api.results import raw_outputs, results_document
from terrapipe.api.routers.landing import base_url
from terrapipe.api.service import Service, get_service
from terrapipe.runs import fetch_inputs
from terrapipe.transfer.url_inputs import LaterFetches, fetch_url, url_target

router = APIRouter(tags=["processes"])
log = logging.getLogger("terrapipe.api")


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
    if service.runner is not None and _wants_async(prefer):
        # the hot path: check the inputs, record the job for the runner process (which
        # downloads URL inputs), answer; a few quick queries, inline (no hop to a thread)
        later = LaterFetches(service.inputs_dir)
        params = resolve_inputs(
            workflow, body.inputs, service.data_roots, catalog=service.catalog_path, fetch=later
        )
        return await _hand_to_runner(service, workflow, params, base, later.urls)
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
    """The 201 of an ordinary async submit (a runner process, JSON inputs, a valid token
    when auth is on; the runner downloads URL inputs); None for anything else, which the
    FastAPI route then answers, errors included. Called by :mod:`terrapipe.api.hotpaths`; nothing
    is recorded before every check has passed."""
    kind = content_type.partition(";")[0].strip().lower()
    if service.runner is None or not _wants_async(prefer) or kind != JSON:
        return None
    try:
        token_name(service, authorization)
        request = ExecuteRequest.model_validate_json(body)
        workflow = service.workflow(process)
        later = LaterFetches(service.inputs_dir)
        params = resolve_inputs(
            workflow, request.inputs, service.data_roots, catalog=service.catalog_path, fetch=later
        )
        row = runs.queued_record(
            workflow,
            params,
            runner=service.runner,
            settings=service.settings,
            modules=service.recorded_modules,
            input_urls=later.urls,
        )
    except Exception:  # noqa: BLE001 - the FastAPI route answers it, with the right error
        return None
    return await _record_for_runner(service, row, base)


async def _hand_to_runner(
    service: Service,
    workflow: Any,
    params: dict[str, Any],
    base: str,
    input_urls: dict[str, str] | None = None,
) -> Response:
    """Record the job for the runner process (which downloads ``input_urls`` first) and
    answer 201."""
    row = runs.queued_record(
        workflow,
        params,
        runner=service.runner,
        settings=service.settings,
        modules=service.recorded_modules,
        input_urls=input_urls,
    )
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
    """Execution that may wait (a synchronous run, no runner process): in a thread of the
    pool. A synchronous run downloads its URL inputs here (errors: 400 naming the input);
    an async job is recorded at once and downloads them in a background thread
    (:func:`_fetch_then_run`). Either way the run's parameter is the local path the URL
    was (or will be) downloaded to, and an async job records the URL beside it."""
    folder = service.inputs_dir
    later = LaterFetches(folder)
    params = resolve_inputs(
        workflow,
        body.inputs,
        service.data_roots,
        catalog=service.catalog_path,
        fetch=later
        if _wants_async(prefer)
        else lambda name, url: fetch_url(
            name, url, url_target(url, folder), max_bytes=service.max_download
        ),
    )
    wanted = list(body.outputs) if body.outputs else None
    common = {
        "db": service.db,
        "settings": service.settings,
        "engine": service.engine,
        "modules": service.recorded_modules,
    }
    if _wants_async(prefer):
        if later.urls:
            return _accepted(_fetch_in_background(workflow, params, later.urls, service), base)
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
        declared = set(sink_nodes(workflow))  # an output with no value is not unknown
        unknown = sorted(set(wanted) - declared)
        if unknown:
            raise ApiError(
                400,
                "invalid-input",
                f"unknown output {unknown[0]!r}; outputs: " + ", ".join(sorted(declared)),
            )
        doc = {k: v for k, v in doc.items() if k in wanted}
    return JSONResponse(doc, headers=headers)


def _fetch_in_background(
    workflow: Any, params: dict[str, Any], urls: dict[str, str], service: Service
) -> Any:
    """An async job with URL inputs and no runner process: record it ``queued`` and owned
    by this process (so it is found ``interrupted`` if the process dies before it ends),
    then download and hand it to the service's engine in a background thread."""
    from terrapipe.core.owner import current_owner

    row = runs.queued_record(
        workflow,
        params,
        runner=current_owner(),
        settings=service.settings,
        modules=service.recorded_modules,
        input_urls=urls,
        engine=service.engine,
    )
    (run,) = runs.record_queued(service.db, [row])
    threading.Thread(
        target=_fetch_then_run,
        args=(run.id, workflow, params, urls, service),
        name=f"terrapipe-fetch-{run.id[:12]}",
    ).start()
    return run


def _fetch_then_run(
    run_id: str, workflow: Any, params: dict[str, Any], urls: dict[str, str], service: Service
) -> None:
    """Download the URL inputs, then execute the run (local engine, in this thread) or
    hand it to Celery; whatever fails ends the run ``failed``, with a message."""
    db = service.db
    try:
        if not fetch_inputs(db, run_id, urls, params, max_bytes=service.max_download):
            return
        runs.run_queued(
            run_id, workflow, params, db=db, settings=service.settings, engine=service.engine
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the run: nobody else would see it
        log.warning("job %s could not run: %s: %s", run_id, type(exc).__name__, exc)
        runs.fail_unstarted(run_id, f"the job could not run: {type(exc).__name__}: {exc}", db=db)


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
