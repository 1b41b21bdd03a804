"""What people see: data printed verbatim (never as rich markup), names whole at 80 columns.

Markup: rich parsed every printed string, so an error message or name holding ``[/]``
crashed the command with a MarkupError traceback, and ``[link=…]`` printed a terminal
hyperlink (OSC 8). The process runs as on a colour terminal (``FORCE_COLOR``), where rich
would emit those sequences.

Widths: at 80 columns rich cut every column (``ndvi-timese…``, ``LC08_L1TP_…``); names and
ids now stay whole and the other columns fold.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from terrapipe_process import OSC8, plain, terrapipe

MARKUP = "[/] [link=http://x]y[/link]"

MARKUP_MODULE = textwrap.dedent(
    """
    from terrapipe import Workflow, task

    @task
    def items() -> list:
        return ["[/]", "[link=http://x]y[/link]"]

    @task
    def explode(item: str) -> str:
        raise RuntimeError(f"bad item {item} [/] [link=http://x]y[/link]")

    wf = Workflow("flow [/] [link=http://x]y[/link]")
    wf.add_node(items)
    wf.add_node(explode, items, map_over=True)

    raw = Workflow("esc \\x1b]8;;http://x\\x1b\\\\y")  # a raw hyperlink in the name
    raw.add_node(items)
    """
)


def _no_terminal_sequences(text: str) -> None:
    assert OSC8 not in text  # no hyperlink
    assert "\x1b" not in plain(text)  # nothing but colour codes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "a[/]b"], "error: unknown workflow 'a[/]b'"),
        (["run", "[link=http://x]y[/link]"], "error: unknown workflow '[link=http://x]y[/link]'"),
        (
            ["runs", "list", "--state", MARKUP],
            f"error: unknown run state '{MARKUP}'; states: queued",
        ),
    ],
    ids=["close-tag", "link", "state"],
)
def test_error_text_is_printed_verbatim(args: list[str], message: str) -> None:
    proc = terrapipe(*args, colour=True, columns=200)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MarkupError" not in proc.stderr
    lines = plain(proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    _no_terminal_sequences(proc.stdout + proc.stderr)


def test_run_and_workflow_views_print_names_and_errors_verbatim(tmp_path: Path) -> None:
    module = tmp_path / "markup_flows.py"
    module.write_text(MARKUP_MODULE)
    name = f"flow {MARKUP}"
    proc = terrapipe("run", name, "-m", str(module), "--all", colour=True, columns=250)
    assert proc.returncode == 1, proc.stderr
    out = plain(proc.stdout)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert "run " in out and f" · {name} v1 · failed" in out  # the table title
    assert f"RuntimeError: bad item [/] {MARKUP}" in out
    assert f"RuntimeError: bad item [link=http://x]y[/link] {MARKUP}" in out
    _no_terminal_sequences(proc.stdout + proc.stderr)
    run_id = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("run "))

    views = {
        ("runs", "list"): f"{name} v1",
        ("runs", "show", run_id): f"bad item [/] {MARKUP}",
        ("workflows", "list", "-m", str(module)): name,
        ("workflows", "show", "esc \x1b]8;;http://x\x1b\\y", "-m", str(module)): (
            "esc \\x1b]8;;http://x\\x1b\\y v1"  # control characters shown, not sent
        ),
        ("workflows", "show", name, "-m", str(module)): f"{name} v1",
    }
    for args, expected in views.items():
        proc = terrapipe(*args, colour=True, columns=250)
        assert proc.returncode == 0, (args, proc.stderr)
        assert expected in plain(proc.stdout), (args, proc.stdout)
        _no_terminal_sequences(proc.stdout + proc.stderr)


LONG_FLOW = textwrap.dedent(
    """
    from terrapipe import Workflow, task

    @task
    def fail_loudly() -> None:
        raise RuntimeError("a long error message " * 8)

    wf = Workflow("ndvi-timeseries-of-a-rather-long-region")
    wf.add_node(fail_loudly)
    """
)


def test_workflows_and_runs_lists_keep_names_whole_at_80_columns(cli, tmp_path: Path) -> None:
    from terrapipe.core.registry import load_registry

    module = tmp_path / "long_flows.py"
    module.write_text(LONG_FLOW)
    proc = terrapipe("workflows", "list", "-m", str(module))
    assert proc.returncode == 0, proc.stderr
    assert max(len(ln) for ln in proc.stdout.splitlines()) <= 80
    names = load_registry([str(module)]).names()
    assert "download-crop-convert-publish" in names
    for name in names:
        assert name in proc.stdout, name

    code, _, _ = cli("run", "ndvi-timeseries-of-a-rather-long-region", "-m", str(module))
    assert code == 1
    proc = terrapipe("runs", "list")
    assert proc.returncode == 0, proc.stderr
    assert max(len(ln) for ln in proc.stdout.splitlines()) <= 80
    assert "ndvi-timeseries-of-a-rather-long-region v1" in proc.stdout
    code, out, _ = cli("runs", "list", "--json")  # --json is the full record
    assert json.loads(out)[0]["error"] == "1 node(s) failed: fail_loudly"


def test_layers_list_keeps_layer_names_whole_at_80_columns(tmp_path: Path) -> None:
    from terrapipe.publish.layers import publish_layer
    from terrapipe.store import open_database

    files = []
    for i in range(2):
        path = tmp_path / f"mean_ndvi_per_village_{i}_with_a_long_file_name.csv"
        path.write_text("village,mean\n")
        files.append(path)
    with open_database() as db:
        layer = publish_layer(
            db,
            dataset="mean ndvi per village",
            roi="Madhya Pradesh/Balaghat/Baihar",
            kind="table",
            algorithm_version=3,
            files=files,
            workflow="ndvi-timeseries",
        )
    assert len(layer.name) > 40
    proc = terrapipe("layers", "list")
    assert proc.returncode == 0, proc.stderr
    assert layer.name in proc.stdout
    assert max(len(ln) for ln in proc.stdout.splitlines()) <= 80


LANDSAT = [
    "LC08_L1TP_225078_20200911_20200919_02_T1_B4",
    "LC08_L1TP_225078_20200911_20200919_02_T1_B5",
]


def test_catalog_search_keeps_entry_ids_whole_at_80_columns(cli, tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    folder.mkdir()
    for name in LANDSAT:
        with rasterio.open(
            folder / f"{name}.TIF",
            "w",
            driver="GTiff",
            width=4,
            height=4,
            count=1,
            dtype="uint16",
            crs="EPSG:32621",
            transform=from_origin(500000, 7000000, 30, 30),
        ) as ds:
            ds.write(np.ones((1, 4, 4), dtype="uint16"))
    code, _, err = cli("catalog", "harvest", str(folder))
    assert code == 0, err
    proc = terrapipe("catalog", "search")
    assert proc.returncode == 0, proc.stderr
    assert max(len(ln) for ln in proc.stdout.splitlines()) <= 80
    for name in LANDSAT:
        assert name in proc.stdout, proc.stdout
    code, out, _ = cli("catalog", "search", "--json")
    assert sorted(d["entry_id"] for d in json.loads(out)) == LANDSAT
