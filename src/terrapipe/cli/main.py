"""The ``terrapipe`` command: command groups are registered here, errors mapped to exit codes.

Exit codes: 0 ok, 1 run failed, 2 bad usage or bad input. Each command module defines a
``typer.Typer`` (``app``) or plain commands; none of them prints a traceback for a
:class:`~terrapipe.errors.TerrapipeError`: :func:`main` turns it into one line on stderr.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from terrapipe import errors

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE = 0, 1, 2

# One table: error class -> exit code. The first matching class (in order) wins.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (errors.TaskError, EXIT_RUN_FAILED),
    (errors.Cancelled, 130),
    (errors.StoreError, EXIT_RUN_FAILED),
    (errors.InvalidInput, EXIT_USAGE),
    (errors.NotFound, EXIT_USAGE),
    (errors.TerrapipeError, EXIT_RUN_FAILED),
)

# Command groups: (module under terrapipe.cli, group name or None for top-level commands).
COMMAND_MODULES: tuple[tuple[str, str | None], ...] = (
    ("run", None),
    ("workflows", "workflows"),
    ("runs", "runs"),
    ("demo", None),
    ("sample", None),
    ("layers", "layers"),
    ("catalog", "catalog"),
    ("transfer", None),
    ("worker", None),
)

app = typer.Typer(
    name="terrapipe",
    help="Geospatial processing from a local function to a published, cataloged dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def exit_code_for(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_RUN_FAILED


def _register(root: typer.Typer) -> None:
    for module_name, group in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"terrapipe.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"terrapipe.cli.{module_name}":
                continue  # that area is not built yet
            raise
        sub = getattr(module, "app", None)
        if group and isinstance(sub, typer.Typer):
            root.add_typer(sub, name=group)
        elif hasattr(module, "register"):
            module.register(root)


_register(app)


def _configure_logging(stderr: Console) -> None:
    """Task and library messages go to stderr (stdout stays one JSON document with --json),
    at ``TERRAPIPE_LOG_LEVEL`` (default WARNING)."""
    import logging
    import os

    from rich.logging import RichHandler

    level = os.environ.get("TERRAPIPE_LOG_LEVEL", "WARNING").upper()
    handler = RichHandler(console=stderr, show_time=False, show_path=False, markup=False)
    logger = logging.getLogger("terrapipe")
    logger.handlers[:] = [handler]
    logger.setLevel(level if level in logging.getLevelNamesMapping() else "WARNING")
    logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run the app and map errors to exit codes."""
    stderr = Console(stderr=True)
    _configure_logging(stderr)
    try:
        code = app(args=argv, standalone_mode=False)  # typer.Exit(n) comes back as n
    except errors.TerrapipeError as exc:
        stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        stderr.print("[bold red]interrupted[/]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here with standalone_mode=False
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(EXIT_USAGE)
        if isinstance(exc, click.exceptions.Abort):
            stderr.print("[bold red]aborted[/]")
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
