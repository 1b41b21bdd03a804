"""``terrapipe catalog ...``: JSON output, exit codes and bad input (both DBs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from terrapipe.catalog.query import count
from terrapipe.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def scenes(tmp_path: Path, make_raster) -> Path:
    root = tmp_path / "scenes"
    make_raster(
        root / "LC08_L2SP_193029_20210508_20210517_02_T1_SR_B4.TIF",
        crs="EPSG:32632",
        origin=(600000, 5000000),
    )
    make_raster(root / "ortho_2021-06-01.tif", crs="EPSG:32633", origin=(300000, 5000000))
    return root


def test_harvest_search_show_json(db, capsys, scenes: Path) -> None:
    code, out, _ = run(capsys, "catalog", "harvest", str(scenes), "--json")
    assert code == 0
    assert json.loads(out) | {"failures": []} == {
        "source": str(scenes),
        "kind": "folder",
        "added": 2,
        "updated": 0,
        "failed": 0,
        "failures": [],
    }
    code, out, _ = run(
        capsys,
        "catalog",
        "search",
        "-q",
        '{"platform": "landsat-8"}',
        "-b",
        "2021-05-01",
        "-e",
        "2021-05-31",
        "-g",
        "8,44,11,47",
        "--json",
    )
    assert code == 0
    [found] = json.loads(out)
    assert found["instrument"] == "oli-tirs" and found["uris"][0]["role"] == "data"
    assert found["footprint"]["type"] == "Polygon"

    code, out, _ = run(capsys, "catalog", "search", "-r", "1d", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = run(capsys, "catalog", "search", "--limit", "1", "--json")
    assert [d["time_start"][:10] for d in json.loads(out)] == ["2021-05-08"]

    code, out, _ = run(capsys, "catalog", "show", str(found["id"]), "--json")
    assert code == 0 and json.loads(out)["entry_id"] == found["entry_id"]
    code, out, _ = run(capsys, "catalog", "show", found["entry_id"])
    assert code == 0 and "landsat-8" in out

    code, _, err = run(capsys, "catalog", "show", "no-such-dataset")
    assert code == 2 and "no dataset with id or entry_id 'no-such-dataset'" in err


BAD_SEARCHES = [
    (["-q", '{"collection": '], "invalid JSON for -q"),
    (["-q", "[1, 2]"], "expected an object"),
    (["-q", '{"colection": "x"}'], "valid fields: id, entry_id"),
    (["-q", '{"instrument__near": "x"}'], "valid operators: exact, iexact"),
    (["-b", "2021-02-30"], "invalid begin '2021-02-30'"),
    (["-r", "yesterday"], "invalid relative time"),
    (["-g", "POLYGON ((1 2, 3"], "invalid WKT geometry"),
    (["--limit", "0"], "invalid limit 0"),
]


def test_bad_search_input_exits_2(db, capsys, scenes: Path) -> None:
    run(capsys, "catalog", "harvest", str(scenes))
    for args, message in BAD_SEARCHES:
        code, out, err = run(capsys, "catalog", "search", *args)
        assert (code, out) == (2, ""), args
        assert message in err, (args, err)
        assert "Traceback" not in err


def test_partial_harvest_reports_and_exits_2(db, capsys, scenes: Path) -> None:
    (scenes / "corrupt.tif").write_bytes(b"\x00" * 64)
    code, out, err = run(capsys, "catalog", "harvest", str(scenes), "--json")
    assert code == 2
    report = json.loads(out)
    assert (report["added"], report["failed"]) == (2, 1)
    assert "corrupt.tif" in report["failures"][0]["error"]
    assert "1 of 3 item(s) failed" in err
    assert count(db) == 2

    code, out, err = run(capsys, "catalog", "retry-failed", "--json")
    assert code == 2 and json.loads(out)["failed"] == 1
    (scenes / "corrupt.tif").unlink()
    code, _, err = run(capsys, "catalog", "harvest", str(scenes / "missing"))
    assert code == 2 and "harvest source not found" in err


def test_console_script_exit_codes(tp_home: Path) -> None:
    """The installed ``terrapipe`` command maps bad input to exit code 2."""
    exe = Path(sys.executable).with_name("terrapipe")
    env = dict(os.environ)
    ok = subprocess.run(
        [str(exe), "catalog", "search", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (ok.returncode, json.loads(ok.stdout)) == (0, [])
    bad = subprocess.run(
        [str(exe), "catalog", "search", "-q", "{oops"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "invalid JSON for -q" in bad.stderr
