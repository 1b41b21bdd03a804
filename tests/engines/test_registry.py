"""Engines are looked up by name: the built-in ``local`` without package metadata, others
through the ``terrapipe.engines`` entry point group."""

from __future__ import annotations

import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from terrapipe import Workflow, engines, get_run, submit, task
from terrapipe.errors import InvalidInput

PLUGIN = textwrap.dedent(
    """
    from terrapipe.engines.base import RunJob

    HANDED = []

    class HandOffEngine:
        '''Accepts runs and hands them to "elsewhere" (here: a list), like a broker would.'''

        name = "handoff"

        def run(self, job: RunJob, *, wait: bool = True):
            HANDED.append((job.run_id, job.workflow.name, dict(job.params), wait))
            return None
    """
)


@task
def double(x: int) -> int:
    return 2 * x


def _flow() -> Workflow:
    wf = Workflow("plugin-flow")
    wf.add_node(double)
    return wf


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A package declaring an engine in the entry point group, seen by importlib.metadata."""
    (tmp_path / "tp_fake_engine.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(
        name="handoff", value="tp_fake_engine:HandOffEngine", group=engines.ENTRY_POINT_GROUP
    )
    real = metadata.entry_points

    def entry_points(**params):
        if params.get("group") == engines.ENTRY_POINT_GROUP:
            return metadata.EntryPoints([ep])
        return real(**params)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    yield
    sys.modules.pop("tp_fake_engine", None)


def test_local_is_built_in_without_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.entry_points

    def no_metadata(**params):
        if params.get("group") == engines.ENTRY_POINT_GROUP:
            raise AssertionError("the built-in engine must not need package metadata")
        return real(**params)

    monkeypatch.setattr(metadata, "entry_points", no_metadata)
    assert engines.get_engine("local").name == "local"
    run = submit(_flow(), {"x": 4})
    assert run.state == "succeeded" and run.nodes["double"].outputs == 8


def test_entry_point_engine_gets_the_recorded_run(plugin) -> None:
    assert engines.engine_names() == ["local", "celery", "handoff"]
    run = submit(_flow(), {"x": 4}, engine="handoff", wait=False)
    import tp_fake_engine

    assert [(run.id, "plugin-flow", {"x": 4}, False)] == tp_fake_engine.HANDED
    stored = get_run(run.id)
    assert stored.engine == "handoff"
    assert stored.state == "queued"  # recorded; executing it is the engine's business


def test_unknown_engine_is_refused_before_recording(plugin) -> None:
    with pytest.raises(
        InvalidInput, match=r"unknown engine 'celeryy'; engines: local, celery, handoff"
    ):
        submit(_flow(), {"x": 1}, engine="celeryy")
    from terrapipe import list_runs

    assert list_runs() == []


def test_broken_plugin_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = metadata.EntryPoint(
        name="broken", value="tp_no_such_module:X", group=engines.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(metadata, "entry_points", lambda **p: metadata.EntryPoints([ep]))
    with pytest.raises(
        InvalidInput, match=r"engine 'broken' \(tp_no_such_module:X\) cannot be loaded"
    ):
        engines.get_engine("broken")
