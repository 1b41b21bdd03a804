"""Files named by values enter the cache key (issue 9 item 1): a mapped item, an upstream
output, a ``str`` parameter, a list of them. Changing, touching, rewriting or deleting such a
file reruns what reads it, with the reason naming the file; adding an item still computes
only that item. Every test runs on SQLite and on PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from terrapipe import Task, Workflow, task
from terrapipe.core.cache import value_paths
from terrapipe.core.task import Param

pytestmark = pytest.mark.usefixtures("db_url")

README_FLOWS = """
from pathlib import Path
from terrapipe import Workflow, task


@task(version=1)
def scenes(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*.tif"))


@task(version=1)
def footprint(ctx, item: str) -> dict:
    ctx.log.info("reading %s", item)
    return {"file": item, "bytes": Path(item).stat().st_size}


@task(version=1)
def summary(footprint: list[dict]) -> int:
    return sum(f["bytes"] for f in footprint)


flow = Workflow("sizes", version=1)
flow.add_node(scenes)
flow.add_node(footprint, scenes, map_over=True)  # one instance per scene
flow.add_node(summary, footprint)  # gets the list of outputs
"""


def write_tif(path: Path, size: int) -> None:
    """A real GeoTIFF of ``size`` x ``size`` float32 pixels, written under a temporary name
    and renamed into place (as a user replacing a scene would)."""
    tmp = path.with_name(path.name + ".tmp")
    data = np.arange(size * size, dtype="float32").reshape(size, size)
    with rasterio.open(
        tmp, "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
        crs="EPSG:32643", transform=from_origin(300000, 2300000, 30, 30),
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    os.replace(tmp, path)


def nodes(out: str) -> dict[str, dict]:
    doc = json.loads(out)
    flat = {}
    for value in doc["nodes"].values():
        for n in value if isinstance(value, list) else [value]:
            flat[n["key"]] = n
    return flat


def test_readme_sizes_example_reruns_what_reads_a_changed_file(cli, tmp_path: Path) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(README_FLOWS)
    data = tmp_path / "data"
    data.mkdir()
    write_tif(data / "a.tif", 10)
    write_tif(data / "b.tif", 20)
    run = ("run", "sizes", "-m", str(flows), "-p", f"folder={data}", "--json")

    code, out, err = cli(*run)
    assert code == 0, err
    first = nodes(out)
    assert first["summary"]["outputs"] == sum(p.stat().st_size for p in data.glob("*.tif"))

    # replace a.tif with a file of another size
    old_size = (data / "a.tif").stat().st_size
    write_tif(data / "a.tif", 64)
    assert (data / "a.tif").stat().st_size != old_size
    code, out, err = cli(*run)
    assert code == 0, err
    second = nodes(out)
    assert second["footprint[0]"]["state"] == "succeeded"
    assert second["footprint[0]"]["reason"] == "input changed: a.tif"
    assert second["footprint[1]"]["state"] == "cached"
    assert second["summary"]["state"] == "succeeded"
    assert second["summary"]["outputs"] == sum(p.stat().st_size for p in data.glob("*.tif"))

    # touch b.tif (same bytes, new mtime): stat fingerprints see it
    st = (data / "b.tif").stat()
    os.utime(data / "b.tif", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    code, out, err = cli(*run)
    third = nodes(out)
    assert third["footprint[1]"]["reason"] == "input changed: b.tif"
    assert third["footprint[0]"]["state"] == "cached"

    # nothing changed: everything cached
    code, out, err = cli(*run)
    assert {n["state"] for n in nodes(out).values()} == {"cached"}

    # adding a scene computes only that scene (a mapped item's identity is the item)
    write_tif(data / "c.tif", 5)
    code, out, err = cli(*run)
    fourth = nodes(out)
    assert [fourth[f"footprint[{i}]"]["state"] for i in range(3)] == [
        "cached",
        "cached",
        "succeeded",
    ]
    assert fourth["footprint[2]"]["reason"] == "no cached result"
    assert fourth["summary"]["outputs"] == sum(p.stat().st_size for p in data.glob("*.tif"))


def test_deleting_a_file_named_by_a_str_parameter_reruns(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    write_tif(a, 8)
    write_tif(b, 9)

    @task
    def files(paths: list) -> list[str]:
        return list(paths)

    @task
    def nbytes(item: str) -> int:
        return os.path.getsize(item) if os.path.exists(item) else -1

    wf = Workflow("deleted")
    wf.add_node(files)
    wf.add_node(nbytes, files, map_over=True)
    params = {"paths": [str(a), str(b)]}
    first = wf.run(params)
    assert [i.outputs for i in first.nodes["nbytes"]] == [a.stat().st_size, b.stat().st_size]
    a.unlink()
    run = wf.run(params)
    items = run.nodes["nbytes"]
    assert items[0].state == "succeeded" and items[0].reason == "input changed: a.tif"
    assert items[0].outputs == -1
    assert items[1].state == "cached"
    # the list parameter itself names the files: `files` reran too
    assert run.nodes["files"].reason == "input changed: a.tif"


def test_content_mode_sees_a_same_size_rewrite_stat_mode_does_not(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("id,value\n1,10\n")
    st = table.stat()

    @task(fingerprint="content")
    def by_content(table: str) -> str:
        return Path(table).read_text()

    @task
    def by_stat(table: str) -> str:
        return Path(table).read_text()

    wf = Workflow("modes")
    wf.add_node(by_content)
    wf.add_node(by_stat)
    params = {"table": str(table)}
    wf.run(params)
    table.write_text("id,value\n1,99\n")  # same size
    os.utime(table, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    assert table.stat().st_size == st.st_size
    run = wf.run(params)
    assert run.nodes["by_content"].state == "succeeded"
    assert run.nodes["by_content"].reason == "input changed: t.csv"
    assert run.nodes["by_content"].outputs == table.read_text()
    assert run.nodes["by_stat"].state == "cached"  # documented: stat sees size + mtime only


def test_a_file_named_in_an_upstream_output_reruns_the_downstream(tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    folder.mkdir()
    scene = folder / "s1.txt"
    scene.write_text("12345")

    @task
    def listing(folder: str) -> dict:  # a folder in a str: not fingerprinted
        return {"scene": str(Path(folder) / "s1.txt")}

    @task
    def length(listing: dict) -> int:
        return len(Path(listing["scene"]).read_text())

    wf = Workflow("upstream-file")
    wf.add_node(listing)
    wf.add_node(length, listing)
    assert wf.run({"folder": str(folder)}).nodes["length"].outputs == 5
    with scene.open("a") as fh:
        fh.write("678")
    run = wf.run({"folder": str(folder)})
    assert run.nodes["listing"].state == "cached"
    assert run.nodes["length"].state == "succeeded"
    assert run.nodes["length"].reason == "input changed: s1.txt"
    assert run.nodes["length"].outputs == len(scene.read_text())


def test_a_destination_parameter_can_opt_out_of_fingerprints(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "report.txt"

    class Export(Task):
        name = "export"
        params = {"dest": Param(str, fingerprint=False), "text": Param(str, default="hi")}

        def run(self, ctx):
            path = Path(ctx.params["dest"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(ctx.params["text"])
            return str(path)

    wf = Workflow("export")
    wf.add_node(Export())
    wf.run({"dest": str(dest)})
    assert dest.read_text() == "hi"
    run = wf.run({"dest": str(dest)})
    assert run.nodes["export"].state == "cached"  # its own write is not an input change


def test_upstream_artifacts_are_identified_by_the_upstream_key(tp_home: Path) -> None:
    class Make(Task):
        name = "make"

        def run(self, ctx):
            p = ctx.artifact_path("m.txt")
            p.write_text("abc")
            return str(p)

    @task
    def read(make: str) -> int:
        return len(Path(make).read_text())

    wf = Workflow("artifact-input")
    wf.add_node(Make())
    wf.add_node(read, "make")
    first = wf.run()
    assert first.nodes["read"].outputs == 3
    Path(first.nodes["make"].outputs).unlink()
    run = wf.run()
    # the artifact is made again (same key, same bytes, a new mtime); the downstream is
    # keyed by the upstream's key, not by the artifact's stat, so it stays cached
    assert run.nodes["make"].state == "succeeded"
    assert run.nodes["make"].reason == "output missing: m.txt"
    assert Path(run.nodes["make"].outputs).read_text() == "abc"
    assert run.nodes["read"].state == "cached"


def test_which_strings_are_taken_for_file_names(tmp_path: Path) -> None:
    root = str(tmp_path / "artifacts") + os.sep
    value = {
        "roi": "77.1,20.2,77.3,20.4",
        "n": "1.5",
        "date": "2020-01-01",
        "url": "https://example.org/a.tif",
        "wkt": "POLYGON ((0 0, 1 0, 1 1, 0 0))",
        "scene": "a.tif",
        "nested": [{"dem": "data/dem"}, Path("x")],
        "artifact": root + "k/x.tif",
        "artifact_path": Path(root) / "k" / "y.tif",
    }
    assert value_paths(value, skip_prefixes=(root,)) == ["a.tif", "data/dem", "x"]


def test_an_unknown_fingerprint_mode_names_the_task() -> None:
    from terrapipe.errors import WorkflowDefinitionError

    with pytest.raises(WorkflowDefinitionError, match="'bad'.*fingerprint='sha'"):
        task(name="bad", fingerprint="sha")(lambda: 1)
    with pytest.raises(WorkflowDefinitionError, match="'hashed'.*fingerprint='md5'"):

        class Hashed(Task):
            fingerprint = "md5"
