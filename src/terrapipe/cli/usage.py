"""Usage errors of the command-line parser as one line, on every typer layout.

typer up to 0.28 raises click's own exceptions; typer 0.29 vendors click as ``typer._click``
and raises those, which ``click.ClickException`` does not match, so every usage error became
a traceback. The parser's exception classes are therefore found from what typer itself
exports (``typer.BadParameter`` is a ``UsageError`` on both layouts), plus real click's when
it is installed; ``tests/cli/test_usage.py`` fails if typer moves them again.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import typer

_NO_SUCH_COMMAND = re.compile(r"No such command '(?P<name>.+)'\.?$")


def _ancestor(cls: type, name: str) -> type | None:
    return next((c for c in cls.__mro__ if c.__name__ == name), None)


def parser_error_types() -> tuple[type[Exception], ...]:
    """The ``ClickException`` classes a usage error can be: typer's and real click's."""
    found: list[type[Exception]] = []
    vendored = _ancestor(typer.BadParameter, "ClickException")
    if vendored is not None:
        found.append(vendored)
    try:
        import click
    except ImportError:  # pragma: no cover - typer 0.29 no longer needs click
        pass
    else:
        found.append(click.ClickException)
    return tuple(dict.fromkeys(found))


def is_usage_error(exc: BaseException) -> bool:
    """True for a ``UsageError`` (bad command, option, argument) of either click."""
    return _ancestor(type(exc), "UsageError") is not None and isinstance(exc, parser_error_types())


def help_was_shown(exc: BaseException) -> bool:
    """A group called without a command: the parser shows its help instead of an error."""
    return _ancestor(type(exc), "NoArgsIsHelpError") is not None


def _command_path(exc: BaseException) -> str:
    ctx: Any = getattr(exc, "ctx", None)
    return getattr(ctx, "command_path", None) or "terrapipe"


def _suggest_command(exc: BaseException, name: str) -> str:
    ctx: Any = getattr(exc, "ctx", None)
    command = getattr(ctx, "command", None)
    if command is None or not hasattr(command, "list_commands"):
        return ""
    close = difflib.get_close_matches(name, command.list_commands(ctx), n=3)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _first_lower(message: str) -> str:
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def describe(exc: BaseException) -> str:
    """One line naming the problem and where the fix is, e.g. ``no such command 'bogus'.
    Try 'terrapipe --help'.``"""
    format_message = getattr(exc, "format_message", None)
    message = " ".join((format_message() if format_message else str(exc)).split())
    suggestion = ""
    if match := _NO_SUCH_COMMAND.match(message):
        suggestion = _suggest_command(exc, match["name"])
    param: Any = getattr(exc, "param", None)
    if _ancestor(type(exc), "MissingParameter") and getattr(param, "help", None):
        message = f"{message.rstrip('.')}: {param.help}"
    message = _first_lower(message)
    if message and message[-1] not in ".?!":
        message += "."
    if is_usage_error(exc):
        return f"{message}{suggestion} Try '{_command_path(exc)} --help'."
    return message


def exit_code(exc: BaseException) -> int:
    """The parser's own exit code (2 for a usage error)."""
    code = getattr(exc, "exit_code", 2)
    return code if isinstance(code, int) else 2
