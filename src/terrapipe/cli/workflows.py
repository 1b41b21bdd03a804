"""``terrapipe workflows list|show``: what can be run, and its graph."""

from __future__ import annotations

import typer
from rich.tree import Tree

from terrapipe.cli.output import Column, console, print_json, table, text
from terrapipe.cli.render import line, params_table
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
    rows = [
        [
            w.name,
            w.version,
            w.category or "",
            str(len(w.nodes)),
            ", ".join(sorted(w.params)),
            w.description,
        ]
        for w in workflows
    ]
    columns = [Column("name", key=True), "version", "category", "nodes", "parameters"]
    console().print(table([*columns, "description"], rows))


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
    about = f" · {wf.description}" if wf.description else ""
    tree = Tree(line(text(wf.name, "bold"), f" v{wf.version}{about}"))
    branches = {}
    for node in info["nodes"]:
        label = line(node["name"], text(f" (task {node['task']} v{node['version']})", "dim"))
        if node["map_over"]:
            label.append_text(text(f" × map over {node['map_over']}", "magenta"))
        ups = node["upstreams"]
        parent = branches.get(ups[-1]) if ups else tree
        if len(ups) > 1:
            label.append_text(text(f" after {', '.join(ups)}", "dim"))
        branches[node["name"]] = (parent or tree).add(label)
    out.print(tree)
    if info["params"]:
        out.print(params_table(info["params"]))
