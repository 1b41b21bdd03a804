"""``terrapipe runs list|show|cancel|resume``: read the run store, stop and finish runs."""

from __future__ import annotations

import sys

import typer

from terrapipe.cli.output import Column, console, print_json, table
from terrapipe.cli.render import line, print_run, styled
from terrapipe.errors import InvalidInput
from terrapipe.runs import cancel_run, get_run, list_runs, resume_run
from terrapipe.store.models import RUN_STATES  # the one list of run states

app = typer.Typer(help="Inspect, cancel and resume runs.", no_args_is_help=True)


def check_state(state: str | None) -> str | None:
    """``--state``: one of the run store's states, else bad input listing them."""
    if state is None or state in RUN_STATES:
        return state
    raise InvalidInput(f"unknown run state {state!r}; states: {', '.join(RUN_STATES)}")


@app.command("list")
def list_command(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many runs."),
    workflow: str | None = typer.Option(None, "--workflow", help="Only this workflow."),
    state: str | None = typer.Option(
        None, "--state", help=f"Only runs in this state: {', '.join(RUN_STATES)}."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """The newest runs first."""
    runs = list_runs(limit=limit, workflow=workflow, state=check_state(state))
    if json_output:
        print_json(
            [{k: v for k, v in r.to_dict().items() if k not in ("nodes", "counts")} for r in runs]
        )
        return
    rows = []
    for r in runs:
        duration = ""
        if r.started_at and r.finished_at:
            duration = f"{(r.finished_at - r.started_at).total_seconds():.1f} s"
        rows.append(
            [
                r.id[:12],
                f"{r.workflow} v{r.workflow_version}",
                styled(r.state),
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                duration,
                r.error or "",
            ]
        )
    columns = [Column("id", key=True), Column("workflow", key=True), "state", "created"]
    console().print(table([*columns, "duration", "error"], rows))


@app.command("show")
def show_command(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    expand: bool = typer.Option(False, "--all", help="List every mapped instance."),
) -> None:
    """A run, its nodes with state and reason, and the traceback of every failed node."""
    run = get_run(run_id)
    if json_output:
        print_json(run.to_dict(traceback=True))
        return
    print_run(console(), run, expand=expand, tracebacks=True)


@app.command("cancel")
def cancel_command(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Cancel a queued or running run."""
    run = cancel_run(run_id)
    if json_output:
        print_json({"run_id": run.id, "state": run.state, "cancel_requested": True})
        return
    console().print(line(f"run {run.id}: cancel requested (", styled(run.state), ")"))


@app.command("resume")
def resume_command(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix is enough)."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Pool size."),
    module: list[str] = typer.Option(
        [], "--module", "-m", help="Load the run's workflow from this module or .py file."
    ),
    engine: str | None = typer.Option(
        None, "--engine", help="Engine to finish it on (default: the run's own engine)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow a celery run until it ends."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    expand: bool = typer.Option(False, "--all", help="List every mapped instance."),
) -> None:
    """Finish an interrupted (or cancelled, or failed) run under the same id; nodes whose
    results were stored come back cached. A celery run still running (workers stopped,
    messages lost) gets its waiting and lost nodes enqueued again."""
    from terrapipe.cli.output import show_progress
    from terrapipe.cli.run import exit_for, progress_bar

    out = console()
    engine = engine or get_run(run_id).engine
    wait = wait or engine == "local"
    with progress_bar(out, run_id, enabled=wait and show_progress(json_output)) as update:
        run = resume_run(
            run_id, engine=engine, workers=workers, modules=module, on_update=update, wait=wait
        )
    if not wait:
        if json_output:
            print_json(run.to_dict())
        else:
            out.print(f"run {run.id} {styled(run.state)} on {engine}")
        sys.exit(0)
    if json_output:
        print_json(run.to_dict())
    else:
        print_run(out, run, expand=expand)
    sys.exit(exit_for(run))
