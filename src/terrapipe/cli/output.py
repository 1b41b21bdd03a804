"""Shared CLI output helpers: one JSON document for ``--json``, rich tables otherwise.

Everything printed for people that comes from data (names, ids, paths, error messages) goes
through :func:`text` or :func:`table`: it reaches rich as a :class:`~rich.text.Text`, never
as markup, so a dataset id like ``markup[/]id`` or a key like ``[link=http://x]y[/link]``
prints as written instead of crashing the command or emitting a terminal hyperlink; control
characters (an ESC that starts a terminal sequence) are shown as ``\\x1b``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, JustifyMethod, RenderableType
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

# C0 controls except tab and newline, DEL, and C1 controls (CSI, OSC, ... on some terminals).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


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


def print_error(out: Console, message: Any) -> None:
    """``error: MESSAGE`` on one line; the message is data, never rich markup."""
    out.print(Text.assemble(("error:", "bold red"), " ", text(message)), soft_wrap=True)


def safe(value: Any) -> str:
    """``value`` as a string with control characters made visible (``\\x1b``), so data cannot
    move the cursor, retitle the terminal or open a hyperlink."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", "" if value is None else str(value))


def text(value: Any, style: StyleType = "") -> Text:
    """Data for rich: printed verbatim (no markup, control characters visible)."""
    if isinstance(value, Text):
        return value
    return Text(safe(value), style=style)


@dataclass(frozen=True)
class Column:
    """A table column. A ``key`` column holds names and ids: it is never cut or folded
    while the table fits the terminal; other columns fold their text instead."""

    header: str
    key: bool = False
    justify: JustifyMethod = "left"


# Every column costs its right padding, and each one after the first a separator; a column
# that is not a key keeps at least this many characters (it folds its text).
_MIN_FOLDED = 3


def table(
    columns: Sequence[Column | str],
    rows: Iterable[Sequence[Any]],
    *,
    title: RenderableType | None = None,
    width: int | None = None,
) -> Table:
    """A rich table of data cells (each through :func:`text`), names kept whole.

    At 80 columns rich would cut every column to fit (``ndvi-timese…``); here a key column
    gets ``no_wrap`` and a minimum width of its longest line, so the other columns fold
    around it. A name too long even for that (wider than ``width``, the terminal, leaves
    room for) folds onto several lines rather than being cut. The style is light (a rule
    under the header, no borders) so that names get the width. ``--json`` output never goes
    through this.
    """
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    cells = [[text(v) for v in row] for row in rows]
    width = width or console().width
    need = {
        i: max([len(col.header)] + [len(ln) for row in cells for ln in row[i].plain.splitlines()])
        for i, col in enumerate(cols)
        if col.key
    }
    room = width - (2 * len(cols) - 1) - _MIN_FOLDED * (len(cols) - len(need))
    whole: set[int] = set()
    for i in sorted(need, key=need.get):  # shortest names first: most columns stay whole
        if need[i] <= room:
            whole.add(i)
            room -= need[i]
    out = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for i, col in enumerate(cols):
        header = text(col.header)
        if not col.key:
            out.add_column(header, overflow="fold", justify=col.justify)
        elif i in whole:  # no_wrap: rich shrinks the other columns, never this one
            out.add_column(
                header, no_wrap=True, overflow="fold", min_width=need[i], justify=col.justify
            )
        else:  # longer than the terminal allows: a fixed width, folded onto more lines
            fixed = max(_MIN_FOLDED, room // (len(need) - len(whole)))
            out.add_column(header, overflow="fold", width=fixed, justify=col.justify)
    for row in cells:
        out.add_row(*row)
    return out
