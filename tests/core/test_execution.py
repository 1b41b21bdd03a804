"""Running workflows: caching and its reasons, failures, retries, timeouts, artifacts,
fan-out and reduce. Every test runs on SQLite and on PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from terrapipe import Task, Workflow, get_run, task
from terrapipe.core.task import Param

pytestmark = pytest.mark.usefixtures("db_url")


class Calls:
    """Thread-safe record of which tasks actually executed."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        with self._lock:
            self.names.append(name)

    def take(self) -> list[str]:
        with self._lock:
            out, self.names = sorted(self.names), []
        return out


def three_step(calls: Calls, *, version_b: int = 1) -> Workflow:
    @task(version=1)
    def load(path: Path) -> int:
        calls.add("load")
        return len(path.read_text())

    @task(version=version_b)
    def double(load: int) -> int:
        calls.add("double")
        return load * 2

    @task(version=1)
    def report(double: int, label: str = "n") -> str:
        calls.add("report")
        return f"{label}={double}"

    @task(version=1)
    def side(load: int) -> int:
        calls.add("side")
        return load

    wf = Workflow("three")
    wf.add_node(load)
    wf.add_node(double, load)
    wf.add_node(report, double)
    wf.add_node(side, load)
    return wf


def states(run) -> dict[str, str]:
    return {i.key: i.state for i in run.instances}


def reasons(run) -> dict[str, str]:
    return {i.key: i.reason for i in run.instances}


def test_rerun_is_fully_cached_and_executes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("hello")
    calls = Calls()
    wf = three_step(calls)
    first = wf.run({"path": str(data)})
    assert first.state == "succeeded"
    assert first.nodes["report"].outputs == "n=10"  # len("hello") * 2, computed by hand
    assert calls.take() == ["double", "load", "report", "side"]
    second = wf.run({"path": str(data)})
    assert second.state == "succeeded"
    assert set(states(second).values()) == {"cached"}
    assert calls.take() == []
    assert second.nodes["report"].outputs == "n=10"
    assert get_run(second.id).nodes["report"].outputs == "n=10"


def test_version_bump_reruns_node_and_downstream_only(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("abc")
    calls = Calls()
    three_step(calls).run({"path": str(data)})
    calls.take()
    run = three_step(calls, version_b=2).run({"path": str(data)})
    assert calls.take() == ["double", "report"]
    assert states(run) == {
        "load": "cached",
        "double": "succeeded",
        "report": "succeeded",
        "side": "cached",
    }
    assert reasons(run)["double"] == "version 1 -> 2"
    assert reasons(run)["report"] == "upstream changed: double"


def test_touching_an_input_file_reruns_what_depends_on_it(tmp_path: Path) -> None:
    data = tmp_path / "dem.tif"
    data.write_text("abc")
    calls = Calls()
    wf = three_step(calls)
    wf.run({"path": str(data)})
    calls.take()
    data.write_text("abcd")
    os.utime(data, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    run = wf.run({"path": str(data)})
    assert calls.take() == ["double", "load", "report", "side"]
    assert reasons(run)["load"] == "input changed: dem.tif"
    assert run.nodes["report"].outputs == "n=8"


def test_parameter_change_and_force(tmp_path: Path) -> None:
    data = tmp_path / "in.txt"
    data.write_text("abc")
    calls = Calls()
    wf = three_step(calls)
    wf.run({"path": str(data)})
    calls.take()
    run = wf.run({"path": str(data), "label": "m"})
    assert calls.take() == ["report"]
    assert reasons(run)["report"] == "parameter changed: label"
    forced = wf.run({"path": str(data), "label": "m"}, force=True)
    assert calls.take() == ["double", "load", "report", "side"]
    assert set(reasons(forced).values()) == {"forced"}


def test_not_applicable_is_skipped_and_downstream_sees_no_output() -> None:
    @task(applicable=lambda ctx: ctx.params["enabled"])
    def optional(enabled: bool = False) -> int:
        return 1

    @task
    def after(optional):
        return {"got": optional}

    wf = Workflow("skip")
    wf.add_node(optional)
    wf.add_node(after, optional)
    run = wf.run()
    assert run.nodes["optional"].state == "skipped"
    assert run.nodes["optional"].reason == "not applicable"
    assert run.nodes["after"].outputs == {"got": None}
    assert wf.run({"enabled": True}).nodes["after"].outputs == {"got": 1}


def test_failure_marks_downstream_and_keeps_earlier_results(tmp_path: Path) -> None:
    calls = Calls()
    flag = tmp_path / "broken"
    flag.write_text("1")

    @task
    def good() -> int:
        calls.add("good")
        return 2

    @task
    def bad(good: int) -> int:
        calls.add("bad")
        if flag.exists():
            raise ValueError("sensor file is corrupt")
        return good + 1

    @task
    def last(bad: int) -> int:
        calls.add("last")
        return bad * 10

    wf = Workflow("fails")
    wf.add_node(good)
    wf.add_node(bad, good)
    wf.add_node(last, bad)
    run = wf.run()
    assert run.state == "failed"
    assert states(run) == {"good": "succeeded", "bad": "failed", "last": "upstream_failed"}
    assert run.nodes["bad"].error == "ValueError: sensor file is corrupt"
    assert "Traceback" in run.nodes["bad"].traceback and "raise ValueError" in (
        run.nodes["bad"].traceback
    )
    assert "1 node(s) failed: bad" in run.error
    assert calls.take() == ["bad", "good"]
    flag.unlink()
    rerun = wf.run()
    assert rerun.state == "succeeded"
    assert states(rerun) == {"good": "cached", "bad": "succeeded", "last": "succeeded"}
    assert calls.take() == ["bad", "last"]
    assert rerun.nodes["last"].outputs == 30


def test_unstorable_output_fails_the_node_with_a_clear_message() -> None:
    @task
    def weird():
        return {"value": object()}

    run = Workflow("weird").add_node(weird) and None
    wf = Workflow("weird2")
    wf.add_node(weird)
    run = wf.run()
    assert run.state == "failed"
    assert "UnstorableOutput" in run.nodes["weird"].error
    assert "outputs['value']" in run.nodes["weird"].error
    assert run.nodes["weird"].attempts == 1  # not retried: it would fail the same way


def test_retries_with_backoff_then_success() -> None:
    attempts: list[float] = []

    @task(retries=3, retry_delay=0.05)
    def flaky() -> int:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError("reset by peer")
        return len(attempts)

    wf = Workflow("flaky")
    wf.add_node(flaky)
    run = wf.run()
    assert run.state == "succeeded"
    assert run.nodes["flaky"].attempts == 3
    assert run.nodes["flaky"].outputs == 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # exponential backoff


def test_timeout_fails_the_node() -> None:
    @task(timeout=0.2)
    def slow(ctx) -> int:
        ctx.sleep(5)
        return 1

    wf = Workflow("slow")
    wf.add_node(slow)
    started = time.monotonic()
    run = wf.run()
    assert time.monotonic() - started < 3
    assert run.nodes["slow"].state == "failed"
    assert "timed out after 0.2s" in run.nodes["slow"].error


def test_artifacts_are_committed_on_success_only(tp_home: Path) -> None:
    class Writer(Task):
        name = "writer"
        params = {"fail": Param(bool, default=False)}

        def run(self, ctx):
            path = ctx.artifact_path("out/data.txt")
            path.write_text("payload")
            if ctx.params["fail"]:
                raise RuntimeError("disk full")
            return {"file": path, "files": [path], "promised": str(ctx.stored_path(path))}

    wf = Workflow("writer")
    wf.add_node(Writer())
    run = wf.run({"fail": True})
    assert run.state == "failed"
    artifacts = tp_home / "artifacts"
    leftovers = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.exists() else []
    assert leftovers == []
    ok = wf.run()
    out = ok.nodes["writer"].outputs["file"]
    assert isinstance(out, Path) and out.read_text() == "payload"
    assert out.is_relative_to(artifacts / ok.nodes["writer"].cache_key)
    assert ok.nodes["writer"].outputs["files"] == [out]
    assert Path(ok.nodes["writer"].outputs["promised"]) == out  # said before the commit
    # removing the stored files invalidates the cached result instead of returning dead paths
    import shutil

    shutil.rmtree(out.parent.parent)
    again = wf.run()
    assert again.nodes["writer"].state == "succeeded"
    assert again.nodes["writer"].outputs["file"].read_text() == "payload"


def test_map_reduce_matches_plain_python() -> None:
    @task
    def items(n: int = 6) -> list[int]:
        return list(range(n))

    @task
    def cube(item: int) -> int:
        return item**3

    @task
    def plus_one(cube: int) -> int:
        return cube + 1

    @task
    def total(plus_one: list[int]) -> int:
        return sum(plus_one)

    wf = Workflow("mr")
    wf.add_node(items)
    wf.add_node(cube, items, map_over=True)
    wf.add_node(plus_one, cube, map_over=True)  # element-wise over a mapped node
    wf.add_node(total, plus_one)
    run = wf.run({"n": 6}, workers=3)
    assert run.nodes["total"].outputs == sum(i**3 + 1 for i in range(6))
    assert [i.outputs for i in run.nodes["plus_one"]] == [i**3 + 1 for i in range(6)]
    assert [i.map_index for i in run.nodes["cube"]] == list(range(6))


def test_adding_items_computes_only_the_new_ones() -> None:
    calls = Calls()

    @task
    def dates(days: list = ["d1", "d2"]) -> list[str]:  # noqa: B006
        return list(days)

    @task
    def ndvi(item: str) -> str:
        calls.add(item)
        return item.upper()

    @task
    def series(ndvi: list[str]) -> str:
        return ",".join(ndvi)

    wf = Workflow("incremental")
    wf.add_node(dates)
    wf.add_node(ndvi, dates, map_over=True)
    wf.add_node(series, ndvi)
    wf.run({"days": "d1,d2"})
    assert calls.take() == ["d1", "d2"]
    run = wf.run({"days": "d1,d2,d3"})
    assert calls.take() == ["d3"]
    assert run.nodes["series"].outputs == "D1,D2,D3"
    assert [i.state for i in run.nodes["ndvi"]] == ["cached", "cached", "succeeded"]
    assert run.nodes["ndvi"][2].reason == "no cached result"


def test_failure_in_one_mapped_item_fails_only_its_chain() -> None:
    @task
    def items() -> list[int]:
        return [1, 2, 0, 4]

    @task
    def invert(item: int) -> float:
        return 1 / item

    @task
    def twice(invert: float) -> float:
        return invert * 2

    @task
    def total(twice: list[float]) -> float:
        return sum(twice)

    wf = Workflow("partial")
    wf.add_node(items)
    wf.add_node(invert, items, map_over=True)
    wf.add_node(twice, invert, map_over=True)
    wf.add_node(total, twice)
    run = wf.run()
    assert [i.state for i in run.nodes["invert"]] == ["succeeded"] * 2 + ["failed", "succeeded"]
    assert [i.state for i in run.nodes["twice"]] == ["succeeded"] * 2 + [
        "upstream_failed",
        "succeeded",
    ]
    assert run.nodes["total"].state == "upstream_failed"
    assert "ZeroDivisionError" in run.nodes["invert"][2].error


def test_map_over_empty_list_and_non_list() -> None:
    @task
    def nothing(kind: str = "empty"):
        return [] if kind == "empty" else {"not": "a list"}

    @task
    def each(item):
        return item

    @task
    def after(each):
        return len(each)

    wf = Workflow("empty")
    wf.add_node(nothing)
    wf.add_node(each, nothing, map_over=True)
    wf.add_node(after, each)
    run = wf.run()
    assert run.nodes["each"].state == "skipped"
    assert "returned []" in run.nodes["each"].reason
    assert run.nodes["after"].outputs == 0
    bad = wf.run({"kind": "dict"})
    assert bad.state == "failed"
    assert run.nodes["each"].map_index == -1
    assert "not a list" in bad.nodes["each"].error


def test_workers_run_ready_nodes_concurrently() -> None:
    @task
    def items() -> list[int]:
        return [1, 2, 3, 4]

    @task
    def wait(ctx, item: int) -> int:
        ctx.sleep(0.4)
        return item

    wf = Workflow("parallel")
    wf.add_node(items)
    wf.add_node(wait, items, map_over=True)
    started = time.monotonic()
    run = wf.run(workers=4)
    elapsed = time.monotonic() - started
    assert run.state == "succeeded"
    assert elapsed < 1.4, f"4 x 0.4 s on 4 workers took {elapsed:.2f} s"
