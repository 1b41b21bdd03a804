from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from terrapipe.cli.sample import register


def _app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """test root"""

    register(root)
    return root


def test_sample_data_json(tmp_path: Path):
    result = CliRunner().invoke(
        _app(), ["sample-data", str(tmp_path / "r"), "--seed", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["seed"] == 5 and Path(doc["directory"]) == (tmp_path / "r").resolve()
    assert (tmp_path / "r" / "manifest.json").is_file()


def test_bad_seed_exits_2_through_the_root_command(tmp_path: Path, capsys):
    from terrapipe.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["sample-data", str(tmp_path / "r"), "--seed", "-4"])
    assert info.value.code == 2
    assert "-4" in capsys.readouterr().err
