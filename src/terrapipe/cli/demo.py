"""``terrapipe demo``: the five region workflows on the bundled sample region."""

from __future__ import annotations

import sys

import typer
from rich.style import Style

from terrapipe.cli.exits import EXIT_RUN_FAILED
from terrapipe.cli.output import Column, console, print_json, table, text
from terrapipe.cli.render import line, styled
from terrapipe.pipelines.showcase import DEMO_ROI, run_showcase


def demo_command(
    roi: str = typer.Option(DEMO_ROI, "--roi", help="Block (state/district/block) or bbox."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Run the five region workflows on the sample region and write report.html.

    The sample region is generated on first use. Run it twice: the second time every node
    is cached.
    """
    out = console()

    def progress(name: str, run) -> None:
        if not json_output:
            counts = ", ".join(f"{n} {s}" for s, n in sorted(run.counts().items()))
            out.print(line(styled(run.state), f" {name:22s} {counts}"))

    if not json_output:
        out.print(line(text("terrapipe demo", "bold"), f" · {roi}"))
    show = run_showcase(roi=roi, on_run=progress)
    if json_output:
        print_json(
            {
                "state": "succeeded" if show.ok else "failed",
                "runs": [r.to_dict() for r in show.runs],
                "layers": [la.to_dict() for la in show.layers],
                "report": str(show.report),
            }
        )
    else:
        rows = [
            [la.name, la.kind, f"v{la.layer_version}", str(len(la.files))] for la in show.layers
        ]
        out.print(
            table([Column("layer", key=True), "kind", "version", "files"], rows, title="layers")
        )
        report = str(show.report)
        out.print(line("report: ", text(report, Style(link=f"file://{report}"))))
        out.print(
            "Run it again: every node is [cyan]cached[/]. Then try "
            "[bold]terrapipe workflows show stream-order[/] and [bold]terrapipe runs list[/]."
        )
    if not show.ok:
        sys.exit(EXIT_RUN_FAILED)


def register(root: typer.Typer) -> None:
    root.command("demo")(demo_command)
