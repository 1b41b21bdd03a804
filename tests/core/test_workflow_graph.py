"""Workflow graphs: validation errors name the nodes; description and parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from terrapipe import Task, Workflow, task
from terrapipe.core.task import Param
from terrapipe.errors import ParameterError, WorkflowDefinitionError


@task
def a(x: int = 1) -> int:
    return x


@task
def b(a: int) -> int:
    return a + 1


@task
def c(b: int, scale: float = 2.0) -> float:
    return b * scale


def test_duplicate_node_name_is_rejected_at_once() -> None:
    wf = Workflow("dup")
    wf.add_node(a)
    with pytest.raises(WorkflowDefinitionError, match="duplicate node name 'a'"):
        wf.add_node(a)
    wf.add_node(a, name="a2")  # the same task twice under another name is fine
    assert set(wf.nodes) == {"a", "a2"}


def test_unknown_upstream_names_node_and_upstream() -> None:
    wf = Workflow("unknown")
    wf.add_node(b, "nothere")
    with pytest.raises(WorkflowDefinitionError, match="node 'b' names unknown upstream 'nothere'"):
        wf.validate()


def test_cycle_is_reported_with_its_nodes() -> None:
    wf = Workflow("cyclic")
    wf.add_node(a, "c")
    wf.add_node(b, "a")
    wf.add_node(c, "b")
    with pytest.raises(WorkflowDefinitionError) as info:
        wf.validate()
    message = str(info.value)
    assert "cycle" in message
    path = message.split("cycle: ")[1].split(" -> ")
    assert path[0] == path[-1] and set(path) == {"a", "b", "c"}


def test_self_loop_is_a_cycle() -> None:
    wf = Workflow("self")
    wf.add_node(a, "a")
    with pytest.raises(WorkflowDefinitionError, match="a -> a"):
        wf.validate()


def test_map_over_true_needs_exactly_one_upstream() -> None:
    wf = Workflow("m")
    wf.add_node(a)
    wf.add_node(a, name="a2")
    with pytest.raises(WorkflowDefinitionError, match="exactly one upstream"):
        wf.add_node(b, ["a", "a2"], map_over=True)


def test_long_chain_validates_without_recursion() -> None:
    wf = Workflow("long")
    prev = None
    for i in range(5000):
        prev = wf.add_node(a, prev, name=f"n{i}")
    assert wf.topological_order()[:3] == ["n0", "n1", "n2"]
    assert len(wf.describe()["edges"]) == 4999


def test_describe_lists_nodes_edges_versions_and_mermaid() -> None:
    @task(version=3)
    def listing() -> list[int]:
        return [1, 2]

    wf = Workflow("desc", version=2, category="test")
    wf.add_node(listing)
    wf.add_node(b, listing, name="each", map_over=True)
    wf.add_node(c, "each")
    info = wf.describe()
    assert info["version"] == "2"
    assert [n["name"] for n in info["nodes"]] == ["listing", "each", "c"]
    assert info["nodes"][0]["version"] == "3"
    assert info["nodes"][1]["map_over"] == "listing"
    assert info["edges"] == [["listing", "each"], ["each", "c"]]
    assert "flowchart TD" in info["mermaid"] and "-- map -->" in info["mermaid"]
    # `b` names its upstream by argument; here its upstream is `listing`, so `a` is a param
    assert info["params"]["a"]["required"] is True
    assert info["params"]["scale"]["default"] == 2.0


def test_params_unknown_missing_and_wrong_type() -> None:
    wf = Workflow("p")
    wf.add_node(a)
    wf.add_node(c, a, name="c")
    wf.add_node(b, a)
    assert wf.resolve_params({"x": "4", "b": "3", "scale": "1.5"}) == {
        "x": 4,
        "b": 3,
        "scale": 1.5,
    }
    with pytest.raises(ParameterError, match="no parameter 'y'.*parameters: b, scale, x"):
        wf.resolve_params({"y": 1, "b": 1})
    with pytest.raises(ParameterError, match="needs parameter 'b'"):
        wf.resolve_params({})
    with pytest.raises(ParameterError, match="parameter 'x': 'four' is not a valid int"):
        wf.resolve_params({"x": "four", "b": 1})


def test_class_task_params_and_name() -> None:
    class ClipRaster(Task):
        version = 2
        params = {"raster": Path, "buffer": Param(float, default=0.0)}

        def run(self, ctx):
            return None

    wf = Workflow("cls")
    wf.add_node(ClipRaster)
    assert "clip-raster" in wf.nodes
    params = wf.resolve_params({"raster": "~/x.tif"})
    assert params["raster"] == Path("~/x.tif").expanduser() and params["buffer"] == 0.0


def test_conflicting_param_types_are_a_definition_error() -> None:
    @task
    def one(x: int = 1) -> int:
        return x

    @task
    def two(x: str = "a") -> str:
        return x

    wf = Workflow("conflict")
    wf.add_node(one)
    wf.add_node(two)
    with pytest.raises(WorkflowDefinitionError, match="parameter 'x' has type"):
        wf.validate()
