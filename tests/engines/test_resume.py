"""``resume_run``: a cancelled run finishes under its own id, stored results come back
cached; a live run is refused; a user workflow needs its module again."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from terrapipe import get_run
from terrapipe.errors import InvalidInput, WorkflowNotFound
from terrapipe.runs import cancel_run, resume_run, submit

pytestmark = pytest.mark.usefixtures("db_url")

MODULE = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from terrapipe import Workflow, task

    # the side-effect files come from the environment: a str parameter naming a file would
    # enter the cache key, and these files change between the runs on purpose
    @task
    def items() -> list:
        return [0, 1, 2]

    @task
    def work(ctx, item: int) -> int:
        log, hold = os.environ["RESUME_LOG"], os.environ["RESUME_HOLD"]
        with open(log, "a") as fh:
            fh.write(f"{item}\\n")
        if item == 2:
            while Path(hold).exists():
                ctx.sleep(0.02)
        return item * 10

    flow = Workflow("resume-me")
    flow.add_node(items)
    flow.add_node(work, items, map_over=True)
    """
)


def _wait(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_cancelled_run_resumes_with_cached_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "resume_flow.py"
    module.write_text(MODULE)
    log, hold = tmp_path / "calls.log", tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv("RESUME_LOG", str(log))
    monkeypatch.setenv("RESUME_HOLD", str(hold))
    params: dict = {}
    run = submit("resume-me", params, modules=[str(module)], workers=1, wait=False)
    _wait(lambda: log.exists() and "2" in log.read_text().split())
    with pytest.raises(InvalidInput, match="is still running; cancel it first"):
        resume_run(run.id, modules=[str(module)])
    cancel_run(run.id)
    _wait(lambda: get_run(run.id).state != "running")
    assert get_run(run.id).state == "cancelled"

    hold.unlink()
    log.unlink()
    with pytest.raises(WorkflowNotFound, match="unknown workflow 'resume-me'"):
        resume_run(run.id)  # a workflow from a module: resume needs the module again
    done = resume_run(run.id, modules=[str(module)], workers=1)
    assert done.id == run.id and done.state == "succeeded"
    assert {i.key: i.state for i in done.instances} == {
        "items": "cached",
        "work[0]": "cached",
        "work[1]": "cached",
        "work[2]": "succeeded",
    }
    assert log.read_text().split() == ["2"]  # only the unfinished node ran again
    assert [i.outputs for i in get_run(run.id).nodes["work"]] == [0, 10, 20]
    with pytest.raises(InvalidInput, match="is succeeded; only interrupted, cancelled or failed"):
        resume_run(run.id, modules=[str(module)])
