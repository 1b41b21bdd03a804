"""``terrapipe demo``: run the built-in demo and show what caching does."""

from __future__ import annotations

import typer

from terrapipe.cli.output import console, print_json
from terrapipe.cli.render import print_run
from terrapipe.core.runs import submit


def demo_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Run the demo workflow twice: the second run is served from the cache."""
    out = console()
    first = submit("demo")
    second = submit("demo")
    if json_output:
        print_json({"runs": [first.to_dict(), second.to_dict()]})
        return
    out.rule("first run")
    print_run(out, first)
    out.rule("second run: nothing changed, so nothing runs")
    print_run(out, second)
    out.print(
        "\nTry: [bold]terrapipe run demo -p n=6[/] (only the new item runs), "
        "[bold]terrapipe runs list[/], [bold]terrapipe workflows show demo[/]"
    )


def register(root: typer.Typer) -> None:
    root.command("demo")(demo_command)
