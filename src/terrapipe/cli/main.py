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
from rich.text import Text

from terrapipe import errors
from terrapipe.cli import usage
from terrapipe.cli.exits import EXIT_CANCELLED, EXIT_OK, exit_code_for
from terrapipe.cli.output import print_error

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
    ("serve", None),
    ("tokens", "tokens"),
    ("worker", None),
)

app = typer.Typer(
    name="terrapipe",
    help="Geospatial processing from a local function to a published, cataloged dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    stderr = Console(stderr=True, highlight=False)
    _configure_logging(stderr)
    try:
        code = app(args=argv, prog_name="terrapipe", standalone_mode=False)  # Exit(n) -> n
    except errors.TerrapipeError as exc:
        print_error(stderr, exc)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        stderr.print(Text("interrupted", "bold red"))
        sys.exit(EXIT_CANCELLED)
    except SystemExit:
        raise
    except typer.Exit as exc:  # raised outside a command (typer returns it otherwise)
        sys.exit(exc.exit_code)
    except typer.Abort:
        stderr.print(Text("aborted", "bold red"))
        sys.exit(EXIT_CANCELLED)
    except Exception as exc:  # the parser's errors arrive here with standalone_mode=False
        if not isinstance(exc, usage.parser_error_types()):
            raise
        if not usage.help_was_shown(exc):
            print_error(stderr, usage.describe(exc))
        elif message := exc.format_message().strip():  # click >= 8.2 without rich
            typer.echo(message)
        sys.exit(usage.exit_code(exc))
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
