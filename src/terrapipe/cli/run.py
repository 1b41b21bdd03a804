"""``terrapipe run WORKFLOW -p key=value ...``: run a workflow now."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from terrapipe.cli.exits import EXIT_USAGE, exit_code_for_run
from terrapipe.cli.output import console, err_console, print_error, print_json, show_progress, text
from terrapipe.cli.render import line, params_table, print_run
from terrapipe.core.plan import RunPlan
from terrapipe.core.registry import find_workflow
from terrapipe.core.runs import Run
from terrapipe.core.states import NodeState, RunState
from terrapipe.errors import ParameterError
from terrapipe.runs import submit


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a pair without ``=`` is an error."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ParameterError(f"-p expects KEY=VALUE, got {pair!r}; write -p {pair}=VALUE")
        if not key.strip():
            raise ParameterError(f"-p expects KEY=VALUE, got {pair!r}; write -p NAME={value}")
        params[key.strip()] = value
    return params


def _check_pairs(pairs: list[str]) -> list[str]:
    """Parser callback: a ``-p`` without ``=`` is reported as such, before the parser
    complains about the value after it (``-p raster FILE``) as an extra argument."""
    parse_params(pairs)
    return pairs


_HELP = "terrapipe.help"  # ctx.meta key: --help was given


def _want_help(ctx: typer.Context, value: bool) -> None:
    """``--help`` is handled by :func:`_workflow_or_help`: click parses WORKFLOW (a
    positional argument) after every option, so only then is the workflow known."""
    if value and not ctx.resilient_parsing:
        ctx.meta[_HELP] = True


def _workflow_or_help(ctx: typer.Context, name: str | None) -> str | None:
    """``run --help``; ``run NAME --help`` also lists NAME's parameters; no NAME is a usage
    error (the argument is optional to click only so that ``--help`` gets here)."""
    if ctx.resilient_parsing:
        return name
    if ctx.meta.get(_HELP):
        modules = ctx.params.get("module") or []
        wf = find_workflow(name, ctx.params.get("version"), modules=modules) if name else None
        usage = ctx.get_help()  # typer's rich help prints itself and returns ""
        if usage:
            typer.echo(usage)
        if wf is not None:
            out = console()
            about = f" · {wf.description}" if wf.description else ""
            out.print(line(f"{wf.name} v{wf.version}{about}"))
            params = wf.describe()["params"]
            if params:
                out.print(params_table(params, title=f"parameters of {wf.name} (-p NAME=VALUE)"))
            else:
                out.print(text(f"{wf.name} takes no parameters"))
        ctx.exit(0)
    if not name:
        ctx.fail("Missing argument 'WORKFLOW': the workflow to run (`terrapipe workflows list`).")
    return name


def _check_required(workflow: str, version: str | None, modules: list[str], given: dict) -> None:
    """A missing required parameter: the error line, then every parameter of the workflow."""
    wf = find_workflow(workflow, version, modules=modules)
    params = wf.describe()["params"]
    missing = [n for n, p in params.items() if p["required"] and n not in given]
    if not missing:
        return
    err = err_console()
    needs = ", ".join(repr(n) for n in missing)
    fix = " ".join(f"-p {n}=VALUE" for n in missing)
    print_error(err, f"workflow {wf.name!r} needs parameter(s) {needs}; pass {fix}")
    err.print(params_table(params, title=f"parameters of {wf.name}"))
    sys.exit(EXIT_USAGE)


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
    workflow: str | None = typer.Argument(
        None,
        metavar="WORKFLOW",
        callback=_workflow_or_help,
        show_default=False,
        help="Workflow name (see `terrapipe workflows list`); required.",
    ),
    param: list[str] = typer.Option(
        [], "--param", "-p", callback=_check_pairs, help="A parameter, KEY=VALUE (repeat)."
    ),
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
    _help: bool = typer.Option(
        False,
        "--help",
        callback=_want_help,
        expose_value=False,
        help="Show this message (and, after NAME, its parameters) and exit.",
    ),
) -> None:
    """Run WORKFLOW with parameters; exit 0 when it succeeds, 1 when it fails.

    `terrapipe run WORKFLOW --help` lists that workflow's parameters.
    """
    params = parse_params(param)
    _check_required(workflow, version, module, params)
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
    """The exit code of a finished run (the table in :mod:`terrapipe.cli.exits`); a run
    that failed on bad input also prints each failed node's error on stderr."""
    code = exit_code_for_run(run)
    if code == EXIT_USAGE:
        for inst in run.instances:
            if inst.state == NodeState.FAILED:
                print_error(err_console(), f"{inst.key}: {inst.error}")
    return code


def register(root: typer.Typer) -> None:
    # Our own --help, handled once WORKFLOW is parsed so that it can list its parameters.
    root.command("run", context_settings={"help_option_names": []})(run_command)
