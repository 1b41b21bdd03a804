"""Rendering runs and workflows for people (rich) — the JSON forms come from ``to_dict``.

Node keys, reasons, outputs and errors are data: they reach rich as
:class:`~rich.text.Text` (see :mod:`terrapipe.cli.output`), never as markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from terrapipe.cli.output import Column, safe, table, text
from terrapipe.core.runs import NodeView, Run

STATE_STYLE = {
    "succeeded": "green",
    "cached": "cyan",
    "skipped": "dim",
    "failed": "bold red",
    "upstream_failed": "red",
    "cancelled": "yellow",
    "running": "blue",
    "pending": "dim",
    "queued": "dim",
    "interrupted": "magenta",
}


def styled(state: str) -> Text:
    """A state in its colour (``str()`` of it is the plain state)."""
    return text(state, STATE_STYLE.get(state, ""))


def line(*parts: Text | str) -> Text:
    """One line from styled pieces and plain data strings (data is never parsed as markup)."""
    return Text.assemble(*(p if isinstance(p, Text) else text(p) for p in parts))


def summarize(value: Any) -> str:
    """A short human view of task outputs: layers by name, files by name, scalars as is."""
    if value is None:
        return ""
    if isinstance(value, Path):
        return value.name
    if isinstance(value, dict):
        if isinstance(value.get("layer"), dict):
            layer = value["layer"]
            return f"{layer['kind']} layer {layer['dataset']} ({len(layer['files'])} files)"
        parts = [
            f"{k}={summarize(v)}" if not isinstance(v, dict) or "layer" in v else f"{k}={{…}}"
            for k, v in value.items()
        ]
        return ", ".join(parts)
    if isinstance(value, list | tuple):
        if len(value) > 4:
            return f"[{summarize(value[0])}, … {len(value)} items]"
        return "[" + ", ".join(summarize(v) for v in value) + "]"
    return str(value)


def _short(value: Any, width: int = 70) -> str:
    text = summarize(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _group_row(name: str, insts: list[NodeView]) -> list[Text | str]:
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for i in insts:
        counts[i.state] = counts.get(i.state, 0) + 1
        reasons[i.reason or ""] = reasons.get(i.reason or "", 0) + 1
    states = Text(", ").join(line(f"{n} ", styled(s)) for s, n in sorted(counts.items()))
    reason = max(reasons, key=reasons.get) if reasons else ""
    errors = next((i.error for i in insts if i.error), "") or ""
    return [f"{name} ×{len(insts)}", states, reason, "", errors or f"{len(insts)} items"]


def run_table(run: Run, *, expand: bool = False) -> Table:
    workers = any(i.worker for i in run.instances)  # a distributed run: say who ran what
    rows: list[list[Text | str]] = []
    for name, value in run.nodes.items():
        if isinstance(value, list) and not expand:
            row = _group_row(name, value)
            if workers:
                hosts = sorted({i.worker for i in value if i.worker})
                row.append(", ".join(hosts[:3]) + (f" +{len(hosts) - 3}" if len(hosts) > 3 else ""))
            rows.append(row)
            continue
        for inst in value if isinstance(value, list) else [value]:
            detail = text(inst.error, "red") if inst.error else _short(inst.outputs)
            row = [
                inst.key,
                styled(inst.state),
                inst.reason or "",
                _duration(inst.duration),
                detail,
            ]
            if workers:
                row.append(inst.worker or "")
            rows.append(row)
    title = line(f"run {run.id} · {run.workflow} v{run.workflow_version} · ", styled(run.state))
    columns = [Column("node", key=True), "state", "reason", "time", "outputs / error"]
    return table([*columns, "worker"] if workers else columns, rows, title=title)


def print_run(
    console: Console, run: Run, *, expand: bool = False, tracebacks: bool = False
) -> None:
    console.print(run_table(run, expand=expand))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(run.counts().items()))
    console.print(line(styled(run.state), f" · {counts}"))
    if run.error:
        console.print(text(run.error, "red"))
    failed = [i for i in run.instances if i.state == "failed"]
    for inst in failed[:5]:
        console.print(text(f"  {inst.key}: {inst.error}", "red"), soft_wrap=True)
    if tracebacks:
        for inst in run.instances:
            if inst.traceback:
                console.rule(text(inst.key, "red"))
                console.print(safe(inst.traceback), markup=False, highlight=False)


def params_table(params: dict[str, dict[str, Any]], *, title: str = "parameters") -> Table:
    """A workflow's run parameters (``Workflow.describe()["params"]``): name, type, default
    or ``required``, and the help text of the task's ``Param`` declaration."""
    rows = [
        [
            name,
            p["type"],
            text("required", "red") if p["required"] else repr(p["default"]),
            p["help"] or "",
        ]
        for name, p in params.items()
    ]
    return table([Column("parameter", key=True), "type", "default", "help"], rows, title=title)
