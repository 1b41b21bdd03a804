"""``terrapipe download`` / ``copy`` end to end: real catalog, real HTTP server, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transfer_data import seed

from terrapipe.cli.main import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_download_json_then_skip_then_copy_with_link_and_flag(db, http_server, tmp_path, capsys):
    bodies = seed(db, http_server, n=2)
    dest = tmp_path / "dl" / "%Y"
    q = json.dumps({"collection": "s2"})
    code, out, err = run(["download", "-d", str(dest), "-q", q, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert len(report["downloaded"]) == 2 and report["failed"] == {}
    assert Path(next(iter(report["downloaded"].values()))).read_bytes() == bodies[0]
    code, out, _ = run(["download", "-d", str(dest), "-q", q, "--json"], capsys)
    assert code == 0 and len(json.loads(out)["skipped"]) == 2

    copies = tmp_path / "copies"
    code, out, err = run(
        ["copy", "-d", str(copies), "-q", q, "-l", "-f", "-t", "nc", "-ttl", "3", "--json"],
        capsys,
    )
    assert code == 0, err
    copied = json.loads(out)["copied"]
    assert sorted(copied) == ["S2_SCENE_0", "S2_SCENE_1"]
    link = Path(copied["S2_SCENE_0"])
    assert link.is_symlink() and link.read_bytes() == bodies[0]
    flag = json.loads(link.with_name(link.name + ".flag").read_text())
    assert flag["entry_id"] == "S2_SCENE_0" and flag["collection"] == "s2"


def test_download_safety_limit_and_time_and_geometry_options(db, http_server, tmp_path, capsys):
    seed(db, http_server, n=3)
    code, _, err = run(["download", "-d", str(tmp_path), "-s", "2"], capsys)
    assert code == 2 and "3 datasets match" in err and "limit of 2" in err
    assert http_server.state.requests == []
    code, out, err = run(
        [
            "download",
            "-d",
            str(tmp_path),
            "-b",
            "2024-02-01",
            "-e",
            "2024-02-28",
            "-g",
            "78,12,78.6,12.6",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert [Path(p).name for p in json.loads(out)["downloaded"].values()] == ["scene1.nc"]
    code, _, err = run(["download", "-d", str(tmp_path), "-r", "-b", "1"], capsys)
    assert code == 2 and "no dataset" in err  # nothing in the last hour


def test_download_bad_input_and_failures_exit_codes(db, http_server, tmp_path, capsys):
    seed(db, http_server, n=1)
    code, _, err = run(["download", "-q", "{not json"], capsys)
    assert code == 2 and "--query" in err
    code, _, err = run(["download", "-r", "-b", "yesterday"], capsys)
    assert code == 2 and "--begin" in err
    settings = tmp_path / "p.yml"
    settings.write_text("'http://x/': {password: '${TP_UNSET_VARIABLE_X}'}\n")  # valid YAML
    code, _, err = run(["download", "-c", str(settings)], capsys)
    assert code == 2 and "TP_UNSET_VARIABLE_X" in err
    del http_server.state.files["scene0.nc"]
    code, out, _ = run(["download", "-d", str(tmp_path), "--json"], capsys)
    assert code == 1 and "404" in json.dumps(json.loads(out)["failed"])


def test_download_and_copy_print_ids_that_look_like_markup_verbatim(
    db, http_server, tmp_path, capsys
) -> None:
    """A harvested id such as ``markup[/]id`` is data: printed as it is, never parsed by rich
    (which crashed on it), and a ``[link=...]`` id opens no terminal hyperlink."""
    from datetime import UTC, datetime

    from shapely.geometry import box

    from terrapipe.catalog.dataset import Dataset, DatasetURI
    from terrapipe.catalog.ingest import save_datasets

    http_server.state.files["ok.nc"] = b"x" * 1000
    save_datasets(
        db,
        [
            Dataset(
                entry_id="markup[/]id",
                collection="m",
                time_start=datetime(2024, 1, 5, tzinfo=UTC),
                footprint=box(77, 12, 78, 13),
                uris=(DatasetURI(http_server.url("pub", "ok.nc")),),
            ),
            Dataset(
                entry_id="[link=http://evil.example]y[/link]",
                collection="m",
                time_start=datetime(2024, 1, 6, tzinfo=UTC),
                footprint=box(77, 12, 78, 13),
                uris=(DatasetURI(http_server.url("pub", "ok.nc"), checksum="sha256:zz"),),
            ),
        ],
    )
    q = json.dumps({"collection": "m"})
    code, out, err = run(["download", "-d", str(tmp_path / "dl"), "-q", q], capsys)
    assert code == 1  # the second one's checksum is unusable: reported by its entry id
    assert "downloaded 1," in out
    assert "'[link=http://evil.example]y[/link]'" in out
    assert "\x1b]8;" not in out and "Traceback" not in err
    code, out, err = run(["copy", "-d", str(tmp_path / "copies"), "-q", q], capsys)
    assert code == 0, err
    assert "markup[/]id: " in out  # copies are listed by entry id
