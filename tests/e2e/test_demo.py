"""`terrapipe demo`: five workflows on the bundled region, a report, and an all-cached rerun."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def run_demo(home: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", "from terrapipe.cli.main import main; main()", "demo", "--json"],
        env={**os.environ, "TERRAPIPE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_demo_twice(tp_home: Path) -> None:
    first = run_demo(tp_home)
    assert first["state"] == "succeeded"
    assert [r["workflow"] for r in first["runs"]] == [
        "drainage-lines",
        "catchment-area",
        "facilities-proximity",
        "stream-order",
        "ndvi-timeseries",
    ]
    kinds = {layer["kind"] for layer in first["layers"]}
    assert kinds == {"raster", "vector", "table"}
    for layer in first["layers"]:
        assert all(Path(f).is_file() for f in layer["files"]), layer["name"]
        assert Path(layer["stac_item"]).is_file()
    report = Path(first["report"])
    assert report.parent == tp_home.resolve()
    page = report.read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) == len(first["layers"])
    assert all((report.parent / src).is_file() for src in images)
    second = run_demo(tp_home)
    for run in second["runs"]:
        assert set(run["counts"]) == {"cached"}, run["workflow"]
