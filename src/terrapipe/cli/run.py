"""``terrapipe run WORKFLOW -p key=value ...``: run a workflow now."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from terrapipe.cli.output import console, err_console, print_json, show_progress
from terrapipe.cli.render import print_run
from terrapipe.core.plan import RunPlan
from terrapipe.core.runs import Run
from terrapipe.core.states import NodeState, RunState
from terrapipe.errors import ParameterError
from terrapipe.runs import submit


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a pair without ``=`` is an error."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"parameter {pair!r} is not of the form key=value")
        params[key.strip()] = value
    return params


@contextlib.contextmanager
def progress_bar(
    out: Console, label: str, *, enabled: bool
) -> Iterator[Callable[[RunPlan], None] | None]:
    """A rich progress bar fed by the engine's updates (nodes done / known), or nothing."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=True) as bar:
        task_id = bar.add_task(label, total=None)

        def update(plan: RunPlan) -> None:
            bar.update(task_id, completed=plan.n_done, total=len(plan.instances))

        yield update


def run_command(
    workflow: str = typer.Argument(..., help="Workflow name (see `terrapipe workflows list`)."),
    param: list[str] = typer.Option([], "--param", "-p", help="A parameter, key=value."),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="Engine: local, celery, or one registered as a terrapipe.engines entry point.",
    ),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="Follow a run handed to workers (celery) until it ends; local runs always wait.",
    ),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Pool size."),
    force: bool = typer.Option(False, "--force", help="Rerun every node, ignoring the cache."),
    version: str | None = typer.Option(None, "--version", help="Workflow version."),
    module: list[str] = typer.Option(
        [], "--module", "-m", help="Also load workflows from this module or .py file."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
    expand: bool = typer.Option(False, "--all", help="List every mapped instance."),
) -> None:
    """Run WORKFLOW with parameters; exit 0 when it succeeds, 1 when it fails."""
    params = parse_params(param)
    out = console()
    wait = wait or engine == "local"
    with progress_bar(out, workflow, enabled=wait and show_progress(json_output)) as update:
        run = submit(
            workflow,
            params,
            engine=engine,
            workers=workers,
            force=force,
            version=version,
            modules=module,
            on_update=update,
            wait=wait,
        )
    if not wait:  # handed to workers: say where to follow it
        if json_output:
            print_json(run.to_dict())
        else:
            out.print(f"run {run.id} {run.state} on {engine}")
            out.print(f"follow it: terrapipe runs show {run.id}")
        sys.exit(0)
    if json_output:
        print_json(run.to_dict())
    else:
        print_run(out, run, expand=expand)
        if run.state == RunState.FAILED:
            out.print(f"details: terrapipe runs show {run.id}")
    sys.exit(exit_for(run))


def exit_for(run: Run) -> int:
    """The exit code of a finished run: 0 succeeded, 1 failed, 2 failed on bad input (each
    failed node's error printed on stderr), 130 cancelled or interrupted."""
    if run.state in (RunState.CANCELLED, RunState.INTERRUPTED):
        return 130
    if run.failed_on_input:
        for inst in run.instances:
            if inst.state == NodeState.FAILED:
                err_console().print(
                    f"error: {inst.key}: {inst.error}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        return 2
    return 0 if run.state == RunState.SUCCEEDED else 1


def register(root: typer.Typer) -> None:
    root.command("run")(run_command)
