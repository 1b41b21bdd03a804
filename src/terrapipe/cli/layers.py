"""``terrapipe layers list``: published layers with their versions and files."""

from __future__ import annotations

from pathlib import Path

import typer

from terrapipe.cli.output import Column, console, print_json, table
from terrapipe.publish.layers import list_layers
from terrapipe.store import open_database

app = typer.Typer(help="Published layers.", no_args_is_help=True)


@app.command("list")
def list_command(
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    workflow: str | None = typer.Option(None, "--workflow", help="Only this workflow."),
    every_version: bool = typer.Option(False, "--all", help="Every version, not the newest."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Layers, newest first (the newest version of each unless --all)."""
    with open_database() as db:
        layers = list_layers(db, dataset=dataset, workflow=workflow, latest=not every_version)
    if json_output:
        print_json([layer.to_dict() for layer in layers])
        return
    # The name already says dataset, ROI and version (``<dataset>_<roi>_v<N>``) and gets the
    # width; files by name (full paths, ROI and version are in --json).
    rows = [
        [
            layer.name,
            layer.kind,
            layer.algorithm_version,
            "\n".join(Path(f).name for f in layer.files),
            layer.updated_at.strftime("%Y-%m-%d %H:%M") if layer.updated_at else "",
        ]
        for layer in layers
    ]
    columns = [Column("layer", key=True), "kind", "algorithm", "files", "updated"]
    console().print(table(columns, rows))
