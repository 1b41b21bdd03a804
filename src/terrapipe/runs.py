"""Submitting, reading, cancelling and resuming runs: the one way in for the CLI, the HTTP
service and Python.

This module sits above :mod:`terrapipe.core` and :mod:`terrapipe.engines` and joins them:
``submit`` validates the workflow and its parameters, records the run in the run store and
hands it to the engine named by ``engine`` (looked up in :mod:`terrapipe.engines`). The
store is the source of truth; ``get_run`` and ``list_runs`` read it back.

Every reader also looks for runs this host was executing whose process is gone (killed,
crashed) and marks them ``interrupted``; ``resume_run`` finishes such a run, reusing the
results its nodes already stored.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from terrapipe.core.context import RunStore
from terrapipe.core.owner import Owner, current_owner, hostname, owner_gone
from terrapipe.core.plan import RunPlan
from terrapipe.core.runs import NodeView, Run, run_from_plan, run_from_rows
from terrapipe.core.states import RUN_ACTIVE, RunState, parse_run_state
from terrapipe.core.values import encode_outputs
from terrapipe.core.workflow import Workflow
from terrapipe.engines import get_engine
from terrapipe.engines.base import RunJob
from terrapipe.errors import InvalidInput, RunNotFound, StoreError, WorkflowNotFound
from terrapipe.settings import Settings, get_settings
from terrapipe.store import runstore
from terrapipe.store.artifacts import ArtifactStore
from terrapipe.store.db import Database, open_database

__all__ = [
    "NodeView",
    "Run",
    "cancel_run",
    "fail_unstarted",
    "fetch_inputs",
    "get_run",
    "get_run_status",
    "list_runs",
    "mark_interrupted_runs",
    "resume_run",
    "queued_record",
    "record_queued",
    "run_queued",
    "submit",
]

_LOG = logging.getLogger("terrapipe.runs")
RESUMABLE = (RunState.INTERRUPTED, RunState.CANCELLED, RunState.FAILED)


def _with_db(db: Database | None, settings: Settings | None) -> tuple[Database, bool]:
    if db is not None:
        return db, False
    return open_database(settings or get_settings()), True


def mark_interrupted_runs(db: Database) -> list[str]:
    """Mark ``interrupted`` every active run owned by a process of this host that is gone
    (its pid no longer exists, or was reused by a later process); return their ids.

    Runs owned by other hosts are left alone: only their own host can tell.
    """
    host = hostname()
    marked = []
    for row in runstore.active_owned_runs(db, host):
        owner = Owner(row["owner_host"], int(row["owner_pid"]), row["owner_started"])
        if not owner_gone(owner, host=host):
            continue
        error = f"the process that ran it (pid {owner.pid} on {owner.host}) ended without finishing"
        if runstore.mark_interrupted(
            db, row["id"], owner_pid=owner.pid, owner_started=owner.started, error=error
        ):
            _LOG.warning("run %s interrupted: %s", row["id"], error)
            marked.append(row["id"])
    return marked


def _read(database: Database, run_id: str) -> Run:
    row = runstore.get_run_row(database, run_id)
    if row is None:
        raise RunNotFound(f"no run with id {run_id!r} (see `terrapipe runs list`)")
    return run_from_rows(row, runstore.node_rows(database, row["id"]))


def get_run(run_id: str, *, db: Database | None = None, settings: Settings | None = None) -> Run:
    """Read a run and its node instances (a unique id prefix is accepted)."""
    database, own = _with_db(db, settings)
    try:
        mark_interrupted_runs(database)
        return _read(database, run_id)
    finally:
        if own:
            database.dispose()


def get_run_status(run_id: str, *, db: Database) -> Run:
    """A run without its nodes, from one indexed read of its row: what a job's status
    needs (the HTTP service polls this). Unlike :func:`get_run` it does not look for
    interrupted runs; a service does that when it starts and every few seconds."""
    row = runstore.get_run_row(db, run_id)
    if row is None:
        raise RunNotFound(f"no run with id {run_id!r} (see `terrapipe runs list`)")
    return run_from_rows(row, [])


def list_runs(
    *,
    limit: int = 20,
    offset: int = 0,
    workflow: str | None = None,
    state: str | None = None,
    db: Database | None = None,
    settings: Settings | None = None,
) -> list[Run]:
    """The newest runs first (skipping ``offset``), without their nodes."""
    if state is not None:
        state = parse_run_state(state)
    database, own = _with_db(db, settings)
    try:
        mark_interrupted_runs(database)
        rows = runstore.list_run_rows(
            database, limit=limit, offset=offset, workflow=workflow, state=state
        )
        return [run_from_rows(r, []) for r in rows]
    finally:
        if own:
            database.dispose()


def cancel_run(run_id: str, *, db: Database | None = None, settings: Settings | None = None) -> Run:
    """Ask a run to stop: a queued run is cancelled at once, a running one at its next
    check (within a second on the local engine; on the celery engine its waiting nodes end
    at once, their messages are revoked and running nodes see ``ctx.cancelled``)."""
    database, own = _with_db(db, settings)
    try:
        mark_interrupted_runs(database)
        run = _read(database, run_id)
        if run.state == RunState.QUEUED:
            runstore.update_run(
                database,
                run.id,
                state=RunState.CANCELLED,
                cancel_requested=True,
                finished_at=dt.datetime.now(dt.UTC),
            )
        elif run.state == RunState.RUNNING:
            if not _cancel_on_engine(database, settings or get_settings(), run):
                runstore.update_run(database, run.id, cancel_requested=True)
        else:
            raise InvalidInput(f"run {run.id} is already {run.state}; nothing to cancel")
        return _read(database, run.id)
    finally:
        if own:
            database.dispose()


def _cancel_on_engine(database: Database, settings: Settings, run: Run) -> bool:
    """An engine executing runs elsewhere may act on a cancel through an optional
    ``cancel_active`` method, which then records the request itself (the celery engine
    does, under the run's lock, right before it revokes the queued messages: workers must
    not see the cancel long before the revoke); whether one did."""
    try:
        engine = get_engine(run.engine)
    except InvalidInput:
        return False
    cancel_active = getattr(engine, "cancel_active", None)
    if cancel_active is None:
        return False
    recorded = (runstore.get_run_row(database, run.id) or {}).get("modules")
    try:
        wf: Workflow | None = _run_workflow(run, (), recorded)
    except (InvalidInput, WorkflowNotFound):  # not loadable here: the workers know it
        wf = None
    cancel_active(database, settings, run.id, wf)
    return True


def recorded_modules(modules: Iterable[str]) -> list[str]:
    """User modules as recorded with a run: a ``.py`` file (or any existing path) made
    absolute, so a later ``runs resume`` from another folder finds it; module names as
    given."""
    out = []
    for spec in modules:
        if os.path.isabs(spec):  # found from any folder already (the service's, made once)
            out.append(spec)
            continue
        path = Path(spec)
        out.append(str(path.resolve()) if spec.endswith(".py") or path.exists() else spec)
    return out


def _run_workflow(run: Run, modules: Iterable[str], recorded: list[str] | None) -> Workflow:
    """The workflow of a recorded run: from ``modules`` if given, else from the modules
    recorded with the run; a recorded module that no longer loads is named."""
    from terrapipe.core.registry import find_workflow

    modules = list(modules)
    if modules:
        return find_workflow(run.workflow, run.workflow_version, modules=modules)
    if not recorded:
        try:
            return find_workflow(run.workflow, run.workflow_version)
        except WorkflowNotFound as exc:
            raise WorkflowNotFound(
                f"{exc}; if run {run.id} came from a user module, pass --module FILE"
            ) from None
    try:
        return find_workflow(run.workflow, run.workflow_version, modules=recorded)
    except (WorkflowNotFound, InvalidInput) as exc:
        raise InvalidInput(
            f"{exc}; run {run.id} was submitted with --module {' '.join(recorded)}: "
            "pass --module naming where its workflow is now"
        ) from None


def _check_engine(engine: Any, database: Database, settings: Settings) -> None:
    """An engine may refuse a store or settings before anything is recorded (the celery
    engine refuses SQLite and a missing broker) through an optional ``check`` method."""
    check = getattr(engine, "check", None)
    if check is not None:
        check(database, settings)


def _job(
    database: Database,
    settings: Settings,
    run_id: str,
    wf: Workflow,
    params: dict[str, Any],
    *,
    force: bool,
    workers: int | None,
    on_update: Callable[[RunPlan], Any] | None,
    own_db: bool,
    claimed: bool = False,
) -> RunJob:
    """What an engine is given to execute a recorded run."""
    return RunJob(
        run_id=run_id,
        workflow=wf,
        params=params,
        store=RunStore(database, ArtifactStore(settings.artifacts_dir), settings),
        force=force,
        workers=workers,
        on_update=on_update,
        own_db=own_db,
        claimed=claimed,
    )


def _hand_off(
    database: Database,
    own: bool,
    settings: Settings,
    run_id: str,
    wf: Workflow,
    params: dict[str, Any],
    *,
    engine: str,
    force: bool,
    workers: int | None,
    on_update: Callable[[RunPlan], Any] | None,
    wait: bool,
) -> Run:
    """Give a recorded run to its engine; the finished run (``wait``) or the run as now
    recorded."""
    job = _job(
        database,
        settings,
        run_id,
        wf,
        params,
        force=force,
        workers=workers,
        on_update=on_update,
        own_db=own and not wait,
    )
    plan = get_engine(engine).run(job, wait=wait)
    if plan is not None:  # the run just executed here: build it from memory, not the store
        return run_from_plan(runstore.get_run_row(database, run_id) or {}, plan)
    return _read(database, run_id)


def submit(
    workflow: Workflow | str,
    params: Mapping[str, Any] | None = None,
    *,
    engine: str = "local",
    workers: int | None = None,
    force: bool = False,
    version: str | None = None,
    modules: Iterable[str] = (),
    settings: Settings | None = None,
    db: Database | None = None,
    on_update: Callable[[RunPlan], Any] | None = None,
    wait: bool = True,
    runner: Owner | None = None,
) -> Run:
    """Validate, record and execute a run of ``workflow``.

    ``workflow`` is a :class:`Workflow` or a registered name. Unknown, missing or
    mistyped parameters raise :class:`~terrapipe.errors.ParameterError` before anything
    is recorded. With ``wait`` (the default) the finished run is returned; with
    ``wait=False`` the run as recorded once its engine took it (``running`` on the local
    engine, which goes on in a background thread): follow it with :func:`get_run`.
    ``db`` and ``settings`` choose the run's store; every task of the run writes there.

    ``runner`` (local engine only): record the run ``queued`` and owned by that process,
    which claims and executes it (:func:`run_queued`; ``terrapipe serve`` has one); nothing
    executes here, ``wait`` is ignored, and the run is returned as recorded.
    """
    from terrapipe.core.registry import find_workflow

    if runner is not None and engine != "local":
        raise InvalidInput(f"a runner process executes local runs only, not {engine!r} ones")
    chosen = get_engine(engine)  # an unknown engine fails before anything is recorded
    wf = (
        workflow
        if isinstance(workflow, Workflow)
        else find_workflow(workflow, version, modules=modules)
    )
    wf.validate()
    resolved = wf.resolve_params(params)
    settings = settings or get_settings()
    database, own = _with_db(db, settings)
    handed = False
    try:
        _check_engine(chosen, database, settings)
        run_id = uuid.uuid4().hex
        now = dt.datetime.now(dt.UTC)
        values: dict[str, Any] = {
            "id": run_id,
            "workflow": wf.name,
            "workflow_version": wf.version,
            "params": encode_outputs(resolved),
            "engine": engine,
            "force": force,
            "modules": recorded_modules(modules) or None,
            "created_at": now,
            "expires_at": now + dt.timedelta(days=settings.run_expiry_days),
        }
        if runner is not None:  # handed to that process: it claims the run from the store
            values.update(owner_host=runner.host, owner_pid=runner.pid)
            values["owner_started"] = runner.started
            runstore.create_run(database, **values)
            return run_from_rows(runstore.as_created(values), [])
        mark_interrupted_runs(database)
        runstore.create_run(database, **values)
        handed = True
        return _hand_off(
            database,
            own,
            settings,
            run_id,
            wf,
            resolved,
            engine=engine,
            force=force,
            workers=workers,
            on_update=on_update,
            wait=wait,
        )
    finally:
        if own and (wait or not handed):
            database.dispose()


def queued_record(
    workflow: Workflow,
    params: Mapping[str, Any] | None,
    *,
    runner: Owner,
    settings: Settings,
    modules: Iterable[str] = (),
    force: bool = False,
    input_urls: Mapping[str, str] | None = None,
    engine: str = "local",
) -> dict[str, Any]:
    """The row of a local run handed to ``runner`` (``submit(runner=...)`` without the
    insert): for a caller that records many at once (:func:`record_queued`).

    Parameters are checked here: a bad one raises before anything is recorded.
    ``input_urls`` (input name -> URL): file inputs ``runner`` downloads, to the path the
    parameter names, before it executes the run (:func:`run_queued`), recorded scrubbed and
    with any credential sealed (:func:`terrapipe.transfer.secrets.seal_urls`; the runner
    opens them with :func:`~terrapipe.transfer.secrets.open_urls`); ``engine``: the one
    ``runner`` hands the run to (it executes a local run itself)."""
    from terrapipe.transfer.secrets import seal_urls

    resolved = workflow.validate().resolve_params(params)
    now = dt.datetime.now(dt.UTC)
    return {
        "id": uuid.uuid4().hex,
        "workflow": workflow.name,
        "workflow_version": workflow.version,
        "params": encode_outputs(resolved),
        "engine": engine,
        "force": force,
        "modules": recorded_modules(modules) or None,
        "input_urls": seal_urls(dict(input_urls), settings.home_dir) if input_urls else None,
        "created_at": now,
        "expires_at": now + dt.timedelta(days=settings.run_expiry_days),
        "owner_host": runner.host,
        "owner_pid": runner.pid,
        "owner_started": runner.started,
    }


def record_queued(db: Database, records: list[dict[str, Any]]) -> list[Run]:
    """Record runs made by :func:`queued_record` in one transaction (one commit for many
    jobs: SQLite has one writer at a time) and return them as recorded."""
    runstore.create_runs(db, records)
    return [run_from_rows(runstore.as_created(values), []) for values in records]


def run_queued(
    run_id: str,
    workflow: Workflow,
    params: Mapping[str, Any],
    *,
    force: bool = False,
    db: Database,
    settings: Settings,
    engine: str = "local",
    claimed: bool = False,
) -> str | None:
    """Execute, here and now on the local engine, a run recorded by ``submit(runner=...)``
    for this process: its final state, or None when it is no longer queued (dismissed
    meanwhile). Read the run itself with :func:`get_run`: the job runner, which calls this
    for every job, has no use for it. With another ``engine`` (celery) the claimed run is
    handed to it instead (``running``: it goes on there).

    The claim is conditional on the run being ``queued``, so a run cancelled between the
    runner's look and its claim is left alone. ``claimed``: the caller claimed it already
    (the job runner claims every run it takes in one statement, :func:`runstore.claim_many`).
    """
    with db.pinned():  # one connection for the job's few statements (this thread's)
        if not claimed and not runstore.claim_queued(db, run_id):
            return None
        job = _job(
            db,
            settings,
            run_id,
            workflow,
            dict(params),
            force=force,
            workers=None,
            on_update=None,
            own_db=False,
            claimed=True,
        )
        if engine != "local":
            get_engine(engine).run(job, wait=False)
            return RunState.RUNNING
        plan = get_engine("local").run(job, wait=True)
        return plan.final_state() if plan is not None and plan.finished else RunState.CANCELLED


def fail_unstarted(run_id: str, error: str, *, input_error: bool = False, db: Database) -> bool:
    """End ``failed`` a run its engine never took (its URL inputs could not be downloaded,
    or its engine refused it), with ``error``; ``input_error``: it failed on its input
    (a 4xx for the service, exit 2 for the CLI). Conditional on the run being active, so a
    run dismissed meanwhile stays dismissed; whether this call ended it."""
    return runstore.fail_active(
        db, run_id, error=error, error_kind="input" if input_error else None
    )


def fetch_inputs(
    db: Database,
    run_id: str,
    urls: Mapping[str, str],
    params: Mapping[str, Any],
    *,
    max_bytes: int | None = None,
) -> bool:
    """Download the URL inputs of run ``run_id`` (input name -> URL), each to the path its
    parameter names, before the run executes: in the job runner, a background thread of
    the server, or :func:`resume_run`. Each is revalidated with its server
    (:func:`terrapipe.transfer.url_inputs.fetch_url`; at most ``max_bytes``, default
    :data:`~terrapipe.transfer.url_inputs.MAX_DOWNLOAD`). Whether they are all in place; if
    one is not, the run is ended ``failed`` with the error naming the input and the URL (a
    failure on its input when the URL answered wrongly: a 4xx for the service, exit 2 for
    the CLI; a local disk failure is not)."""
    from terrapipe.transfer.url_inputs import MAX_DOWNLOAD, fetch_url

    limit = MAX_DOWNLOAD if max_bytes is None else max_bytes
    try:
        for name, url in urls.items():
            fetch_url(name, url, Path(params[name]), max_bytes=limit)
    except (InvalidInput, StoreError) as exc:
        fail_unstarted(run_id, str(exc), input_error=isinstance(exc, InvalidInput), db=db)
        return False
    return True


def resume_run(
    run_id: str,
    *,
    engine: str = "local",
    workers: int | None = None,
    modules: Iterable[str] = (),
    settings: Settings | None = None,
    db: Database | None = None,
    on_update: Callable[[RunPlan], Any] | None = None,
    wait: bool = True,
) -> Run:
    """Finish an interrupted (or cancelled, or failed) run under its own id.

    The run's workflow is looked up by its recorded name and version (in ``modules`` if
    given, else in the user modules recorded with the run) and executed again with its
    recorded parameters: nodes whose results were stored before the interruption come
    back ``cached``; the rest run now. A run with URL inputs (an async job of the service
    whose process died before or while it downloaded them) downloads them again first,
    here, revalidated as every use of one is (:func:`fetch_inputs`); if one cannot be had,
    the resumed run ends ``failed`` on its input, the error naming the input and the URL.
    """
    chosen = get_engine(engine)
    settings = settings or get_settings()
    database, own = _with_db(db, settings)
    handed = False
    try:
        _check_engine(chosen, database, settings)
        mark_interrupted_runs(database)
        run = _read(database, run_id)
        row = runstore.get_run_row(database, run.id) or {}
        recorded = row.get("modules")
        resume_active = getattr(chosen, "resume_active", None)
        if run.state in RUN_ACTIVE and resume_active is not None and run.engine == engine:
            # a distributed run still active (its workers stopped, messages lost): the
            # engine enqueues again what the database says is waiting or lost
            wf = _run_workflow(run, modules, recorded)
            resume_active(database, settings, run.id, wf)
            return _read(database, run.id)
        if run.state in RUN_ACTIVE:
            raise InvalidInput(
                f"run {run.id} is still {run.state}; cancel it first (`terrapipe runs cancel`)"
            )
        if run.state not in RESUMABLE:
            raise InvalidInput(
                f"run {run.id} is {run.state}; only interrupted, cancelled or failed runs "
                "can be resumed"
            )
        wf = _run_workflow(run, modules, recorded)
        owner = current_owner()  # a reader meanwhile must not judge the dead owner again
        restarted = runstore.restart_run(
            database,
            run.id,
            from_states=RESUMABLE,
            engine=engine,
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_started=owner.started,
        )
        if not restarted:
            raise InvalidInput(f"run {run.id} is being resumed elsewhere")
        if row.get("input_urls"):  # downloaded before the crash, or not: fetched again
            from terrapipe.transfer.secrets import open_urls

            try:
                urls = open_urls(row["input_urls"], settings.home_dir)
            except (ValueError, OSError) as exc:  # the installation's key is gone or other
                fail_unstarted(
                    run.id, f"run {run.id}: its URL inputs cannot be read: {exc}", db=database
                )
                return _read(database, run.id)
            if not fetch_inputs(database, run.id, urls, run.params):
                return _read(database, run.id)
        handed = True
        return _hand_off(
            database,
            own,
            settings,
            run.id,
            wf,
            dict(run.params),
            engine=engine,
            force=False,
            workers=workers,
            on_update=on_update,
            wait=wait,
        )
    finally:
        if own and (wait or not handed):
            database.dispose()
