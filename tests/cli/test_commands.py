"""The CLI: JSON output, exit codes, one-line errors, user modules and entry points."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

USER_MODULE = textwrap.dedent(
    """
    from terrapipe import Task, Workflow, task

    @task(version=1)
    def words(text: str = "a b c") -> list:
        return text.split()

    @task
    def shout(item: str) -> str:
        return item.upper()

    class Save(Task):
        name = "save"
        def run(self, ctx):
            path = ctx.artifact_path("words.txt")
            path.write_text(" ".join(ctx.inputs["shout"]))
            return {"file": path}

    @task
    def explode(save) -> None:
        raise RuntimeError("explode was asked to fail")

    shouting = Workflow("shouting", version=2)
    shouting.add_node(words)
    shouting.add_node(shout, words, map_over=True)
    shouting.add_node(Save(), shout)

    broken = Workflow("broken")
    broken.add_node(words)
    broken.add_node(shout, words, map_over=True)
    broken.add_node(Save(), shout)
    broken.add_node(explode, "save")
    """
)


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    path = tmp_path / "my_flows.py"
    path.write_text(USER_MODULE)
    return path


def test_run_json_reports_states_reasons_and_absolute_paths(cli, user_module) -> None:
    code, out, err = cli("run", "shouting", "-m", str(user_module), "-p", "text=x y", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["state"] == "succeeded" and len(doc["run_id"]) == 32
    assert [n["outputs"] for n in doc["nodes"]["shout"]] == ["X", "Y"]
    path = Path(doc["nodes"]["save"]["outputs"]["file"])
    assert path.is_absolute() and path.read_text() == "X Y"
    assert doc["nodes"]["words"]["reason"] == "no cached result"
    code, out, _ = cli("run", "shouting", "-m", str(user_module), "-p", "text=x y", "--json")
    doc2 = json.loads(out)
    assert {n["state"] for n in doc2["nodes"]["shout"]} == {"cached"}
    assert doc2["nodes"]["save"]["state"] == "cached"


def test_failed_run_exits_1_with_one_line_and_traceback_in_runs_show(cli, user_module) -> None:
    code, out, err = cli("run", "broken", "-m", str(user_module))
    assert code == 1
    assert "Traceback" not in out + err
    assert "RuntimeError: explode was asked to fail" in out
    code, out, _ = cli("runs", "list", "--json")
    runs = json.loads(out)
    assert runs[0]["state"] == "failed" and runs[0]["workflow"] == "broken"
    code, out, _ = cli("runs", "show", runs[0]["run_id"], "--json")
    shown = json.loads(out)
    assert shown["nodes"]["explode"]["state"] == "failed"
    assert "raise RuntimeError" in shown["nodes"]["explode"]["traceback"]
    code, out, _ = cli("runs", "show", runs[0]["run_id"][:8])
    assert code == 0 and "Traceback" in out and "upstream_failed" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope"], "unknown workflow 'nope'"),
        (["run", "demo", "-p", "bogus=1"], "has no parameter 'bogus'"),
        (["run", "demo", "-p", "n=abc"], "parameter 'n': 'abc' is not a valid int"),
        (["run", "demo", "-p", "novalue"], "-p expects KEY=VALUE, got 'novalue'"),
        (["run", "demo", "-m", "/no/such/file.py"], "workflow module file not found"),
        (["runs", "show", "ffffffff"], "no run with id 'ffffffff'"),
        (["workflows", "show", "demmo"], "did you mean demo"),
        (["run", "demo", "--engine", "spark"], "unknown engine 'spark'"),
    ],
)
def test_bad_input_exits_2_with_a_clear_line(cli, args, message) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) <= 2


def test_cycle_in_user_module_is_bad_input(cli, tmp_path: Path) -> None:
    path = tmp_path / "cyc.py"
    path.write_text(
        textwrap.dedent(
            """
        from terrapipe import Workflow, task
        @task
        def a(b=None): return 1
        @task
        def b(a=None): return 2
        wf = Workflow("cyc")
        wf.add_node(a, "b")
        wf.add_node(b, "a")
        """
        )
    )
    code, _, err = cli("workflows", "list", "-m", str(path))
    assert code == 2
    assert "has a cycle: " in err and "Traceback" not in err


def test_workflows_list_and_show(cli, user_module) -> None:
    code, out, _ = cli("workflows", "list", "-m", str(user_module), "--json")
    names = {w["name"]: w for w in json.loads(out)}
    assert {"demo", "shouting", "broken"} <= set(names)
    assert names["shouting"]["version"] == "2" and names["shouting"]["params"] == ["text"]
    code, out, _ = cli("workflows", "show", "shouting", "-m", str(user_module))
    assert code == 0 and "map over words" in out and "save" in out
    code, out, _ = cli("workflows", "show", "demo", "--mermaid")
    assert out.startswith("flowchart TD")


def test_entry_point_workflows_are_discovered(cli, tmp_path: Path, monkeypatch) -> None:
    pkg = tmp_path / "site"
    (pkg / "plugin_flows.py").parent.mkdir(parents=True)
    (pkg / "plugin_flows.py").write_text(
        textwrap.dedent(
            """
        from terrapipe import Workflow, task
        @task
        def hello(name: str = "world") -> str:
            return f"hello {name}"
        plugin = Workflow("from-plugin", version="1.2")
        plugin.add_node(hello)
        """
        )
    )
    dist = pkg / "plugin_flows-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-flows\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[terrapipe.workflows]\nplugin = plugin_flows:plugin\n")
    monkeypatch.syspath_prepend(str(pkg))
    code, out, _ = cli("run", "from-plugin", "-p", "name=terrapipe", "--json")
    assert code == 0
    assert json.loads(out)["nodes"]["hello"]["outputs"] == "hello terrapipe"
    sys.modules.pop("plugin_flows", None)


def test_typer_exit_code_is_kept(cli) -> None:
    import typer

    from terrapipe.cli import main as cli_main

    @cli_main.app.command("exit-three", hidden=True)
    def exit_three() -> None:
        raise typer.Exit(3)

    try:
        code, _, _ = cli("exit-three")
    finally:
        cli_main.app.registered_commands.pop()
    assert code == 3


def test_builtin_transfer_workflow_is_registered(cli) -> None:
    code, out, _ = cli("workflows", "show", "download-crop-convert-publish", "--json")
    assert code == 0
    assert [n["name"] for n in json.loads(out)["nodes"]][:2] == ["select", "fetch"]
