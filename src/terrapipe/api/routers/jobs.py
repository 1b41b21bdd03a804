"""OGC API – Processes jobs: the list, one job's status, its results and files, dismiss.

A job is a run in the run store, so a job run on a Celery worker and one run in this
process look the same.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from terrapipe import runs
from terrapipe.api.auth import require_token
from terrapipe.api.describe import job_status
from terrapipe.api.errors import ApiError
from terrapipe.api.inputs import inside
from terrapipe.api.responses import OBJECT_200, json_response
from terrapipe.api.results import media_type, results_document
from terrapipe.api.routers.landing import base_url
from terrapipe.api.routers.processes import job_failed
from terrapipe.api.service import Service, get_service
from terrapipe.errors import NotFound

router = APIRouter(tags=["jobs"])

JOB_ID = r"^[0-9a-f]{4,32}$"


def _run(service: Service, job_id: str):
    try:
        run = runs.get_run(job_id, db=service.db)
    except NotFound:
        raise ApiError(404, "no-such-job", f"no job with id {job_id!r}") from None
    if run.id != job_id and len(job_id) < 32:
        raise ApiError(404, "no-such-job", f"no job with id {job_id!r}")
    return run


@router.get("/jobs", operation_id="getJobs", summary="Jobs, newest first")
def list_jobs(
    request: Request,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000),
    service: Service = Depends(get_service),
) -> dict:
    base = base_url(request)
    page = runs.list_runs(limit=limit + 1, offset=offset, db=service.db)
    more = len(page) > limit
    page = page[:limit]
    links = [
        {
            "href": f"{base}/jobs?limit={limit}&offset={offset}",
            "rel": "self",
            "type": "application/json",
        }
    ]
    if more:
        nxt = offset + limit
        links.append(
            {
                "href": f"{base}/jobs?limit={limit}&offset={nxt}",
                "rel": "next",
                "type": "application/json",
            }
        )
    if offset:
        prev = max(0, offset - limit)
        links.append(
            {
                "href": f"{base}/jobs?limit={limit}&offset={prev}",
                "rel": "prev",
                "type": "application/json",
            }
        )
    return {"jobs": [job_status(r, base) for r in page], "links": links}


@router.get(
    "/jobs/{jobId}",
    operation_id="getStatus",
    summary="A job's status",
    response_class=Response,
    responses=OBJECT_200,
)
async def get_status(
    request: Request,
    jobId: str,  # noqa: N803
    service: Service = Depends(get_service),
) -> Response:
    answer = status_response(service, jobId, base_url(request))
    if answer is None:
        raise ApiError(404, "no-such-job", f"no job with id {jobId!r}")
    return answer


def status_response(service: Service, job_id: str, base: str) -> Response | None:
    """A job's status document, or None when there is no job ``job_id``.

    The hot path of a polling client (also answered by :mod:`terrapipe.api.hotpaths`):
    one indexed read of the run's row, inline on the event loop."""
    service.check_interrupted()
    try:
        run = runs.get_run_status(job_id, db=service.db)
    except NotFound:
        return None
    if run.id != job_id:  # get_run_status accepts a unique prefix; a job id is whole
        return None
    return json_response(job_status(run, base))


@router.get("/jobs/{jobId}/results", operation_id="getResult", summary="A job's results")
def get_results(
    request: Request,
    jobId: str,  # noqa: N803
    service: Service = Depends(get_service),
) -> JSONResponse:
    run = _run(service, jobId)
    if run.state in ("queued", "running"):
        raise ApiError(
            404, "result-not-ready", f"job {run.id} is {run.state}; its results are not ready"
        )
    if run.state in ("cancelled", "expired"):
        raise ApiError(404, "no-such-job", f"job {run.id} was dismissed; it has no results")
    if run.state != "succeeded":
        raise job_failed(run)
    workflow = _workflow_of(service, run)
    job_url = f"{base_url(request)}/jobs/{run.id}"
    return JSONResponse(results_document(run, workflow, job_url, service.settings.artifacts_dir))


@router.get(
    "/jobs/{jobId}/files/{path:path}",
    operation_id="getResultFile",
    summary="A file a job wrote (HTTP Range supported)",
    response_class=FileResponse,
)
def get_result_file(
    jobId: str,  # noqa: N803
    path: str,
    service: Service = Depends(get_service),
) -> FileResponse:
    run = _run(service, jobId)
    root = service.settings.artifacts_dir.resolve()
    target = (root / path).resolve()
    key = Path(path).parts[0] if Path(path).parts else ""
    own_keys = {i.cache_key for i in run.instances if i.cache_key}
    if not inside(target, [root]) or key not in own_keys or not target.is_file():
        raise ApiError(404, "not-found", f"job {run.id} has no file {path!r}", title="not found")
    return FileResponse(target, media_type=media_type(target))


@router.delete("/jobs/{jobId}", operation_id="dismiss", summary="Dismiss (cancel) a job")
def dismiss(
    request: Request,
    jobId: str,  # noqa: N803
    service: Service = Depends(get_service),
    _token: str | None = Depends(require_token),
) -> dict:
    run = _run(service, jobId)
    if run.state in ("queued", "running"):
        run = runs.cancel_run(run.id, db=service.db)
    elif run.state not in ("cancelled", "expired"):
        raise ApiError(
            409,
            "job-finished",
            f"job {run.id} already finished ({run.state}); only a queued or running job can be "
            "dismissed",
            title="job finished",
        )
    status = job_status(run, base_url(request))
    status["status"] = "dismissed"
    status["message"] = "dismissed"
    return status


def _workflow_of(service: Service, run):
    try:
        return service.registry.get(run.workflow, run.workflow_version)
    except NotFound:
        return None
