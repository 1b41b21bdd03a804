"""The plan rules are pure functions over node states: any view of the states will do.

Here the view is a handful of rows, as a database-backed engine would read them inside a
transaction; the same decisions must come out as from the local engine's RunPlan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from terrapipe import Workflow, task
from terrapipe.core import rules
from terrapipe.core.cache import item_identity
from terrapipe.core.plan import RunPlan
from terrapipe.core.states import NodeState, RunState


@dataclass
class Row:
    key: str
    name: str
    map_index: int = -1
    state: str = "pending"
    outputs: Any = None
    cache_key: str | None = None
    item_id: str | None = None
    item: Any = None
    item_key: Any = None


class Rows:
    """A StateView over plain rows (what ``SELECT ... FROM nodes WHERE run_id = ?`` gives)."""

    def __init__(self, rows: list[Row], expanded: set[str]) -> None:
        self.rows = {r.key: r for r in rows}
        self.expanded = expanded

    def is_expanded(self, name: str) -> bool:
        return name in self.expanded

    def node_instances(self, name: str) -> list[Row]:
        return sorted((r for r in self.rows.values() if r.name == name), key=lambda r: r.map_index)

    def node_complete(self, name: str) -> bool:
        final = {s.value for s in rules.NODE_FINAL}
        return name in self.expanded and all(r.state in final for r in self.node_instances(name))

    def instance(self, key: str) -> Row | None:
        return self.rows.get(key)


@task
def dates() -> list:
    return ["2024-01", "2024-02", "2024-03"]


@task
def fetch(item: str) -> str:
    return f"f-{item}"


@task
def index(fetch: str) -> str:
    return f"i-{fetch}"


@task
def report(index: list) -> int:
    return len(index)


def flow() -> Workflow:
    wf = Workflow("rules")
    wf.add_node(dates)
    wf.add_node(fetch, dates, map_over=True)
    wf.add_node(index, fetch, map_over=True)  # element-wise over a mapped node
    wf.add_node(report, index)  # reduce
    return wf


def test_what_exists_at_the_start() -> None:
    assert [n.key for n in rules.initial_instances(flow())] == ["dates", "report"]


def test_expansion_over_an_unmapped_source() -> None:
    wf = flow()
    assert rules.expand(wf, "fetch", Rows([Row("dates", "dates")], {"dates"})) is None
    done = Row("dates", "dates", state="succeeded", outputs=["a", "b"], cache_key="k")
    new = rules.expand(wf, "fetch", Rows([done], {"dates"}))
    assert [(n.key, n.map_index, n.item, n.item_id) for n in new] == [
        ("fetch[0]", 0, "a", item_identity("a")),
        ("fetch[1]", 1, "b", item_identity("b")),
    ]


def test_expansion_placeholders() -> None:
    wf = flow()
    cases = [
        ("failed", None, "upstream_failed", "upstream failed", None),
        ("skipped", None, "skipped", "nothing to map over: dates has no output", None),
        ("succeeded", [], "skipped", "nothing to map over: dates returned []", None),
        (
            "succeeded",
            {"a": 1},
            "failed",
            "map_over 'dates' returned dict, not a list",
            "map_over 'dates' returned dict, not a list",
        ),
    ]
    for state, outputs, want_state, reason, error in cases:
        row = Row("dates", "dates", state=state, outputs=outputs)
        got = rules.expand(wf, "fetch", Rows([row], {"dates"}))
        assert isinstance(got, rules.Placeholder)
        assert (got.key, got.state, got.reason, got.error) == ("fetch", want_state, reason, error)


def test_element_wise_readiness_goes_item_by_item() -> None:
    wf = flow()
    rows = [
        Row("dates", "dates", state="succeeded", outputs=["a", "b"]),
        Row("fetch[0]", "fetch", 0, state="succeeded", outputs="f-a", cache_key="k0"),
        Row("fetch[1]", "fetch", 1, state="running"),
        Row("index[0]", "index", 0),
        Row("index[1]", "index", 1),
        Row("report", "report"),
    ]
    view = Rows(rows, {"dates", "fetch", "index", "report"})
    assert rules.readiness(wf, view.instance("index[0]"), view) == "ready"
    assert rules.readiness(wf, view.instance("index[1]"), view) == "wait"
    assert rules.readiness(wf, view.instance("report"), view) == "wait"
    view.rows["fetch[1]"].state = "failed"
    assert rules.readiness(wf, view.instance("index[1]"), view) == "upstream_failed"
    # what the finished fetch[1] unblocks: its own item downstream only
    assert rules.unblocked(wf, ["index"], view.instance("fetch[1]"), True) == [("index", 1)]
    assert rules.unblocked(wf, ["report"], view.instance("dates"), True) == [("report", None)]
    assert rules.unblocked(wf, ["report"], view.instance("dates"), False) == []


def test_what_a_node_reads() -> None:
    wf = flow()
    rows = [
        Row("index[0]", "index", 0, state="succeeded", outputs="i-a", cache_key="k0"),
        Row("index[1]", "index", 1, state="skipped"),
        Row("index[2]", "index", 2, state="cached", outputs="i-c", cache_key="k2"),
        Row("fetch[1]", "fetch", 1, state="skipped"),
        Row("report", "report"),
        Row("index[9]", "index", 9, item=None),
    ]
    view = Rows(rows, {"index", "fetch"})
    inputs, keys, _ = rules.inputs_for(wf, view.instance("report"), view)
    assert inputs == {"index": ["i-a", "i-c"]} and keys == {"index": ["k0", "k2"]}
    inst = Row("index[1]", "index", 1)
    inputs, keys, item = rules.inputs_for(wf, inst, view)
    assert inputs == {"fetch": None} and keys == {"fetch": "skipped"} and item is None


def test_run_outcome() -> None:
    assert rules.run_outcome(["cached", "skipped"]) == RunState.SUCCEEDED
    assert rules.run_outcome(["succeeded", "upstream_failed"]) == RunState.FAILED
    assert rules.run_outcome(["failed", "cancelled"]) == RunState.CANCELLED


def test_rows_view_decides_as_the_in_memory_plan() -> None:
    """Drive a RunPlan; at every step a row snapshot gives the same readiness verdicts."""
    wf = flow()
    plan = RunPlan(wf)
    ready = plan.start()
    fake = {"dates": ["a", "b", "c"]}
    steps = 0
    while ready:
        inst = ready.pop(0)
        inst.state = NodeState.SUCCEEDED if inst.key != "fetch[1]" else NodeState.FAILED
        inst.outputs = fake.get(inst.name, f"out-{inst.key}")
        inst.cache_key = f"key-{inst.key}"
        ready += plan.on_done(inst.key)
        steps += 1
        snapshot = Rows(
            [
                Row(i.key, i.name, i.map_index, str(i.state), i.outputs, i.cache_key, i.item_id)
                for i in plan.instances.values()
            ],
            set(plan.expanded),
        )
        for key, inst2 in plan.instances.items():
            if inst2.state == "pending":
                verdict = rules.readiness(wf, snapshot.instance(key), snapshot)
                in_plan = "ready" if inst2 in ready else "wait"
                assert verdict == in_plan, (key, verdict, in_plan)
    assert steps == 1 + 3 + 2  # dates, fetch x3, index[0] and index[2]
    assert plan.instances["index[1]"].state == "upstream_failed"
    assert plan.instances["report"].state == "upstream_failed"
    assert plan.finished and plan.final_state() == RunState.FAILED
