"""Usage errors from the user's shell: one line naming the problem and the fix, exit 2.

typer 0.29 vendors click as ``typer._click``; ``isinstance(exc, click.ClickException)`` then
no longer matched and every usage error was a 30-line traceback with exit 1. These run the
real command in a subprocess with the typer/click the environment has installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from terrapipe_process import terrapipe

from terrapipe.store.models import RUN_STATES

# (command line, what the one error line must contain: the problem and where the fix is)
USAGE_ERRORS: list[tuple[list[str], list[str]]] = [
    (["bogus"], ["error: no such command 'bogus'. Try 'terrapipe --help'."]),
    (["rnu"], ["no such command 'rnu'. Did you mean 'run'? Try 'terrapipe --help'."]),
    (["runs", "lst"], ["no such command 'lst'. Did you mean 'list'?", "'terrapipe runs --help'"]),
    (["run"], ["error: missing argument 'WORKFLOW'", "Try 'terrapipe run --help'."]),
    (["workflows", "show"], ["missing argument", "Try 'terrapipe workflows show --help'."]),
    (["run", "demo", "--bogus"], ["error: no such option: --bogus", "'terrapipe run --help'"]),
    (
        ["run", "demo", "-p", "raster", "FILE"],
        ["-p expects KEY=VALUE, got 'raster'; write -p raster="],
    ),
    (["run", "demo", "-p", "=5"], ["-p expects KEY=VALUE, got '=5'; write -p NAME=5"]),
    (["run", "demo", "extra"], ["unexpected extra argument", "(extra)", "'terrapipe run --help'"]),
    (["runs", "show", "a", "b"], ["unexpected extra argument", "(b)"]),
    (["runs", "list", "--limit", "x"], ["invalid value for '--limit'", "runs list --help"]),
    (["runs", "list", "--limit", "0"], ["invalid value for '--limit'"]),
    (["run", "demo", "-p"], ["option '-p' requires an argument", "--help'."]),
    (["catalog", "search", "--geometry"], ["option '--geometry' requires an argument"]),
]


# The cases run as a real process; the rest of the table in-process (same main()).
IN_SUBPROCESS = {"bogus", "run", "run demo --bogus", "run demo -p raster FILE", "run demo extra"}


def _check_one_line(code: int, out: str, err: str, expected: list[str]) -> None:
    assert code == 2, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part in lines[0]
    assert out == ""


@pytest.mark.parametrize(
    ("args", "expected"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS]
)
def test_usage_error_is_one_line_and_exit_2(cli, args: list[str], expected: list[str]) -> None:
    if " ".join(args) in IN_SUBPROCESS:
        proc = terrapipe(*args)
        _check_one_line(proc.returncode, proc.stdout, proc.stderr, expected)
    else:
        _check_one_line(*cli(*args), expected)


def test_runs_list_unknown_state_lists_the_states() -> None:
    proc = terrapipe("runs", "list", "--state", "bogus")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: unknown run state 'bogus'; states: " + ", ".join(RUN_STATES)
    ]
    assert {"queued", "running", "succeeded", "failed", "cancelled"} <= set(RUN_STATES)
    assert terrapipe("runs", "list", "--state", "failed").returncode == 0


def _groups_and_commands() -> list[list[str]]:
    import typer

    from terrapipe.cli.main import app

    root = typer.main.get_command(app)
    found: list[list[str]] = [[]]
    for name, command in root.commands.items():
        found.append([name])
        for sub in getattr(command, "commands", {}):
            found.append([name, sub])
    return found


def test_every_group_and_command_has_help_and_no_args_shows_it(cli) -> None:
    commands = _groups_and_commands()
    assert ["catalog", "search"] in commands and ["runs", "list"] in commands
    for path in commands:
        code, out, err = cli(*path, "--help")
        assert code == 0, (path, err)
        assert "Usage: terrapipe" in out and "Traceback" not in err, path
    for group in (["runs"], ["catalog"], []):
        code, out, err = cli(*group)  # a group without a command shows its help
        assert "Usage: terrapipe" in out + err
        assert "Traceback" not in err and "error:" not in err
        assert code in (0, 2)  # 2 with click >= 8.2, 0 before
    proc = terrapipe("--help")  # and as a process
    assert proc.returncode == 0 and "Usage: terrapipe" in proc.stdout


def test_parser_errors_are_recognised_on_this_typer_layout() -> None:
    """Catches the next move of click's classes inside typer: the exception the app really
    raises must be one :mod:`terrapipe.cli.usage` recognises."""
    from terrapipe.cli import usage
    from terrapipe.cli.main import app

    with pytest.raises(Exception) as raised:
        app(args=["bogus"], prog_name="terrapipe", standalone_mode=False)
    assert usage.is_usage_error(raised.value), type(raised.value).__mro__
    assert usage.exit_code(raised.value) == 2


def test_run_help_lists_the_workflows_parameters(cli, tmp_path: Path) -> None:
    module = tmp_path / "flows.py"
    module.write_text(
        "from terrapipe import Param, Task, Workflow\n"
        "class Scale(Task):\n"
        "    name = 'scale'\n"
        "    params = {\n"
        "        'raster': Param(str, help='GeoTIFF to scale'),\n"
        "        'factor': Param(float, 2.5, help='multiply every cell by this'),\n"
        "    }\n"
        "    def run(self, ctx):\n"
        "        return ctx.params['factor']\n"
        "wf = Workflow('scale-raster', description='Scale a raster')\n"
        "wf.add_node(Scale())\n"
    )
    proc = terrapipe("run", "scale-raster", "-m", str(module), "--help", columns=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Usage: terrapipe run" in out and "parameters of scale-raster" in out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.split()[:1]}
    assert rows["raster"][1:3] == ["str", "required"] and "GeoTIFF to scale" in out
    assert rows["factor"][1:3] == ["float", "2.5"] and "multiply every cell by this" in out

    # without the parameter: the error line names it and the fix, then the same table
    code, _, err = cli("run", "scale-raster", "-m", str(module))
    assert code == 2 and "Traceback" not in err
    first, *rest = err.strip().splitlines()
    assert first == (
        "error: workflow 'scale-raster' needs parameter(s) 'raster'; pass -p raster=VALUE"
    )
    assert any(ln.split()[:3] == ["factor", "float", "2.5"] for ln in rest)

    # --help without a workflow is the command's help; an unknown one is an error
    code, out, _ = cli("run", "--help")
    assert code == 0 and "Usage: terrapipe run" in out and "parameters of" not in out
    code, _, err = cli("run", "nope", "--help")
    assert code == 2 and "unknown workflow 'nope'" in err


@pytest.mark.skipif(
    not os.environ.get("TERRAPIPE_TEST_TYPER_SITES"),
    reason="set TERRAPIPE_TEST_TYPER_SITES=dir[:dir] (pip install --target DIR typer==X click==Y)",
)
@pytest.mark.parametrize("site", os.environ.get("TERRAPIPE_TEST_TYPER_SITES", "").split(":"))
def test_usage_errors_on_other_typer_releases(site: str) -> None:
    """The same errors with an older typer/click in front (how the pyproject bounds were
    tested: typer 0.12 + click 8.1, typer 0.16 + click 8.2)."""
    for args, expected in USAGE_ERRORS:
        proc = terrapipe(*args, pythonpath=[site])
        _check_one_line(proc.returncode, proc.stdout, proc.stderr, expected)
