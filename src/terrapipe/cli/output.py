"""Shared CLI output helpers: one JSON document for ``--json``, rich tables otherwise."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document: Any) -> None:
    """Print one JSON document on stdout (paths absolute, datetimes ISO 8601)."""
    sys.stdout.write(json.dumps(document, default=_default, indent=2) + "\n")
    sys.stdout.flush()


def console() -> Console:
    return Console()


def err_console() -> Console:
    return Console(stderr=True)


def show_progress(json_output: bool) -> bool:
    """A progress bar only on a terminal and never with --json."""
    return not json_output and sys.stdout.isatty()
