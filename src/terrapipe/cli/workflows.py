"""``terrapipe workflows list|show``: what can be run, and its graph."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.tree import Tree

from terrapipe.cli.output import console, print_json
from terrapipe.core.registry import load_registry

app = typer.Typer(help="List workflows and show their graphs.", no_args_is_help=True)

ModuleOption = typer.Option([], "--module", "-m", help="Also load workflows from this module.")


@app.command("list")
def list_workflows(
    module: list[str] = ModuleOption,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Every workflow terrapipe can find (built-ins, entry points, --module)."""
    workflows = load_registry(module).all()
    if json_output:
        print_json(
            [
                {
                    "name": w.name,
                    "version": w.version,
                    "category": w.category,
                    "description": w.description,
                    "nodes": len(w.nodes),
                    "params": sorted(w.params),
                }
                for w in workflows
            ]
        )
        return
    table = Table("name", "version", "category", "nodes", "parameters", "description")
    for w in workflows:
        table.add_row(
            w.name,
            w.version,
            w.category or "",
            str(len(w.nodes)),
            ", ".join(sorted(w.params)),
            w.description,
        )
    console().print(table)


@app.command("show")
def show_workflow(
    name: str = typer.Argument(..., help="Workflow name."),
    version: str | None = typer.Option(None, "--version", help="Workflow version."),
    module: list[str] = ModuleOption,
    mermaid: bool = typer.Option(False, "--mermaid", help="Print the Mermaid text only."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """The DAG of a workflow as text: nodes, versions, fan-out, parameters."""
    wf = load_registry(module).get(name, version)
    info = wf.describe()
    if json_output:
        print_json(info)
        return
    if mermaid:
        typer.echo(info["mermaid"])
        return
    out = console()
    tree = Tree(
        f"[bold]{wf.name}[/] v{wf.version}" + (f" · {wf.description}" if wf.description else "")
    )
    branches = {}
    for node in info["nodes"]:
        label = f"{node['name']} [dim](task {node['task']} v{node['version']})[/]"
        if node["map_over"]:
            label += f" [magenta]× map over {node['map_over']}[/]"
        ups = node["upstreams"]
        parent = branches.get(ups[-1]) if ups else tree
        if len(ups) > 1:
            label += f" [dim]after {', '.join(ups)}[/]"
        branches[node["name"]] = (parent or tree).add(label)
    out.print(tree)
    if info["params"]:
        table = Table("parameter", "type", "default", "help", title="parameters")
        for pname, p in info["params"].items():
            default = "[red]required[/]" if p["required"] else repr(p["default"])
            table.add_row(pname, p["type"], default, p["help"])
        out.print(table)
