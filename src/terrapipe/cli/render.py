"""Rendering runs and workflows for people (rich) — the JSON forms come from ``to_dict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

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


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, '')}]{state}[/]"


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


def _group_row(name: str, insts: list[NodeView]) -> list[str]:
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for i in insts:
        counts[i.state] = counts.get(i.state, 0) + 1
        reasons[i.reason or ""] = reasons.get(i.reason or "", 0) + 1
    states = ", ".join(f"{n} {styled(s)}" for s, n in sorted(counts.items()))
    reason = max(reasons, key=reasons.get) if reasons else ""
    errors = next((i.error for i in insts if i.error), "") or ""
    return [f"{name} ×{len(insts)}", states, reason, "", errors or f"{len(insts)} items"]


def run_table(run: Run, *, expand: bool = False) -> Table:
    table = Table(
        title=f"run {run.id} · {run.workflow} v{run.workflow_version} · {styled(run.state)}",
        title_justify="left",
    )
    workers = any(i.worker for i in run.instances)  # a distributed run: say who ran what
    columns = ("node", "state", "reason", "time", "outputs / error")
    for col in (*columns, "worker") if workers else columns:
        table.add_column(col, overflow="fold")
    for name, value in run.nodes.items():
        if isinstance(value, list) and not expand:
            row = _group_row(name, value)
            if workers:
                hosts = sorted({i.worker for i in value if i.worker})
                row.append(", ".join(hosts[:3]) + (f" +{len(hosts) - 3}" if len(hosts) > 3 else ""))
            table.add_row(*row)
            continue
        for inst in value if isinstance(value, list) else [value]:
            detail = f"[red]{inst.error}[/]" if inst.error else _short(inst.outputs)
            row = [inst.key, styled(inst.state), inst.reason or ""]
            row += [_duration(inst.duration), detail]
            if workers:
                row.append(inst.worker or "")
            table.add_row(*row)
    return table


def print_run(
    console: Console, run: Run, *, expand: bool = False, tracebacks: bool = False
) -> None:
    console.print(run_table(run, expand=expand))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(run.counts().items()))
    console.print(f"{styled(run.state)} · {counts}")
    if run.error:
        console.print(f"[red]{run.error}[/]")
    failed = [i for i in run.instances if i.state == "failed"]
    for inst in failed[:5]:
        console.print(f"  {inst.key}: {inst.error}", style="red", markup=False, soft_wrap=True)
    if tracebacks:
        for inst in run.instances:
            if inst.traceback:
                console.rule(f"[red]{inst.key}")
                console.print(inst.traceback, markup=False, highlight=False)
