"""Stored artifacts from the user's view: string outputs under the staging folder point to
the stored file (issue 9 item 2), outputs left pointing into staging are refused, and a
cached result whose files were deleted, truncated or rewritten is not served (issue 10
item 12). Every test runs on SQLite and on PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from terrapipe import Task, Workflow

pytestmark = pytest.mark.usefixtures("db_url")

ROWS = [["zone", "mean"], ["a", "1.5"], ["b", "2.25"]]


class CsvWriter(Task):
    """The README's string style: ``str(ctx.artifact_path(...))``."""

    name = "csv-writer"

    def run(self, ctx):
        path = ctx.artifact_path("tables/x.csv")
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows(ROWS)
        return {"table": str(path), "tables": [str(path)]}


def test_a_string_output_names_the_stored_file(tp_home: Path) -> None:
    wf = Workflow("strings")
    wf.add_node(CsvWriter())
    run = wf.run()
    out = run.nodes["csv-writer"].outputs
    table = Path(out["table"])
    assert isinstance(out["table"], str) and out["tables"] == [out["table"]]
    assert ".staging" not in table.parts
    assert table == tp_home / "artifacts" / run.nodes["csv-writer"].cache_key / "tables/x.csv"
    with table.open(newline="") as fh:
        assert list(csv.reader(fh)) == ROWS
    again = wf.run()  # the cached outputs still point to a live file
    assert again.nodes["csv-writer"].state == "cached"
    assert Path(again.nodes["csv-writer"].outputs["table"]).read_text() == table.read_text()


FLOWS = """
from pathlib import Path
from terrapipe import Workflow, task


@task
def scratch(ctx) -> str:
    ctx.artifact_path("kept.txt").write_text("kept")
    # a path built by hand inside the staging area, not this node's artifact folder
    loose = ctx.artifact_path("kept.txt").parent.parent / "loose.txt"
    loose.write_text("lost after the run")
    return str(loose)


flow = Workflow("loose", version=1)
flow.add_node(scratch)
"""


def test_an_output_pointing_into_staging_is_refused_naming_the_node(
    cli, tmp_path: Path, tp_home: Path
) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(FLOWS)
    code, out, err = cli("run", "loose", "-m", str(flows), "--json")
    doc = json.loads(out)
    node = doc["nodes"]["scratch"]
    assert code == 2  # a task returning a dead path: an input/usage error, not a crash
    assert node["state"] == "failed"
    assert "node scratch returned" in node["error"] and "staging area" in node["error"]
    assert "ctx.artifact_path()" in node["error"]
    stored = [p for p in (tp_home / "artifacts").iterdir() if p.name != ".staging"]
    assert stored == []  # refused before anything was moved into place


def write_raster(path: Path) -> np.ndarray:
    data = np.linspace(0, 1, 64 * 64, dtype="float32").reshape(64, 64)
    with rasterio.open(
        path, "w", driver="GTiff", width=64, height=64, count=1, dtype="float32", nodata=-1,
        crs="EPSG:4326", transform=from_origin(77.0, 20.5, 0.01, 0.01),
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return data


class RasterAndNote(Task):
    name = "raster-and-note"

    def run(self, ctx):
        tif = ctx.artifact_path("x.tif")
        write_raster(tif)
        note = ctx.artifact_path("notes/b.txt")
        note.write_text("made by raster-and-note")
        return {"raster": tif, "note": str(note)}


class ContentRaster(RasterAndNote):
    name = "content-raster"
    fingerprint = "content"


def raster_flow(task: Task) -> Workflow:
    wf = Workflow(f"artifacts-{task.name}")
    wf.add_node(task)
    return wf


def expected_raster() -> np.ndarray:
    return np.linspace(0, 1, 64 * 64, dtype="float32").reshape(64, 64)


def test_a_deleted_artifact_file_reruns_the_node(tp_home: Path) -> None:
    wf = raster_flow(RasterAndNote())
    first = wf.run().nodes["raster-and-note"]
    Path(first.outputs["note"]).unlink()  # the folder and x.tif are still there
    run = wf.run()
    node = run.nodes["raster-and-note"]
    assert node.state == "succeeded"
    assert node.reason == "output missing: notes/b.txt"
    assert Path(node.outputs["note"]).read_text() == "made by raster-and-note"
    assert wf.run().nodes["raster-and-note"].state == "cached"


def test_a_truncated_artifact_reruns_and_is_readable_again(tp_home: Path) -> None:
    wf = raster_flow(RasterAndNote())
    first = wf.run().nodes["raster-and-note"]
    tif = first.outputs["raster"]
    data = tif.read_bytes()
    tif.write_bytes(data[: len(data) // 2])  # a copy that stopped half way
    with pytest.raises(rasterio.errors.RasterioIOError), rasterio.open(tif) as src:
        src.read(1)
    node = wf.run().nodes["raster-and-note"]
    assert node.state == "succeeded"
    assert node.reason == "output changed: x.tif"
    with rasterio.open(node.outputs["raster"]) as src:
        np.testing.assert_array_equal(src.read(1), expected_raster())


def test_content_tasks_check_artifact_bytes_stat_tasks_sizes(tp_home: Path) -> None:
    def corrupt_same_size(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))

    content = raster_flow(ContentRaster())
    first = content.run().nodes["content-raster"]
    corrupt_same_size(first.outputs["raster"])
    node = content.run().nodes["content-raster"]
    assert node.state == "succeeded" and node.reason == "output changed: x.tif"
    with rasterio.open(node.outputs["raster"]) as src:
        np.testing.assert_array_equal(src.read(1), expected_raster())

    stat = raster_flow(RasterAndNote())
    first = stat.run().nodes["raster-and-note"]
    corrupt_same_size(Path(first.outputs["note"]))
    assert stat.run().nodes["raster-and-note"].state == "cached"  # documented: size only


def test_the_cli_shows_output_missing(cli, tmp_path: Path, tp_home: Path) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(
        "from terrapipe import Workflow, task\n\n"
        "@task\n"
        "def make(ctx) -> str:\n"
        "    p = ctx.artifact_path('x.tif')\n"
        "    p.write_bytes(b'II*\\x00' + bytes(100))\n"
        "    return str(p)\n\n"
        "flow = Workflow('one-file', version=1)\n"
        "flow.add_node(make)\n"
    )
    code, out, _ = cli("run", "one-file", "-m", str(flows), "--json")
    assert code == 0
    Path(json.loads(out)["nodes"]["make"]["outputs"]).unlink()
    code, out, _ = cli("run", "one-file", "-m", str(flows), "--json")
    assert code == 0
    node = json.loads(out)["nodes"]["make"]
    assert (node["state"], node["reason"]) == ("succeeded", "output missing: x.tif")
    assert Path(node["outputs"]).read_bytes() == b"II*\x00" + bytes(100)
