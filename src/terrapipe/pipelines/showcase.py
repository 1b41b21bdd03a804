"""The showcase behind ``terrapipe demo``: the five region workflows for one block.

Generates the sample region once, runs drainage-lines, catchment-area,
facilities-proximity, stream-order and ndvi-timeseries for one block, and writes
``report.html`` next to the layers (in ``$TERRAPIPE_HOME``). A second call is all cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terrapipe.publish.layers import Layer, list_layers
from terrapipe.publish.report import render_report
from terrapipe.runs import Run, submit
from terrapipe.settings import Settings, get_settings
from terrapipe.store import open_database

REGION_WORKFLOWS = (
    "drainage-lines",
    "catchment-area",
    "facilities-proximity",
    "stream-order",
    "ndvi-timeseries",
)
DEMO_ROI = "Narmada Pradesh/Sonpur/Amarkantak"


@dataclass
class Showcase:
    runs: list[Run]
    layers: list[Layer]
    report: Path

    @property
    def ok(self) -> bool:
        return all(r.state == "succeeded" for r in self.runs)


def run_showcase(
    *,
    roi: str = DEMO_ROI,
    data: str = "",
    settings: Settings | None = None,
    on_run: Callable[[str, Run], Any] | None = None,
) -> Showcase:
    """Run the five region workflows for ``roi`` and write the report."""
    settings = settings or get_settings()
    runs = []
    for name in REGION_WORKFLOWS:
        run = submit(name, {"roi": roi, "data": data}, settings=settings)
        runs.append(run)
        if on_run is not None:
            on_run(name, run)
    with open_database(settings) as db:
        names = {n for r in runs for n in (_published(r))}
        layers = [la for la in list_layers(db, latest=True) if la.name in names]
    order = {w: i for i, w in enumerate(REGION_WORKFLOWS)}
    layers.sort(key=lambda la: (order.get(la.workflow, 99), la.name))
    report = render_report(
        layers,
        [r.to_dict() for r in runs],
        settings.home_dir / "report.html",
        title=f"terrapipe demo · {roi}",
    )
    return Showcase(runs=runs, layers=layers, report=report)


def _published(run: Run) -> list[str]:
    node = run.nodes.get("publish")
    if node is None or isinstance(node, list) or not isinstance(node.outputs, dict):
        return []
    return list(node.outputs.get("layers", []))
