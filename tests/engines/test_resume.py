"""``resume_run``: a cancelled run finishes under its own id, stored results come back
cached; a live run is refused; a user workflow's module is recorded with the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from terrapipe import get_run
from terrapipe.errors import InvalidInput
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
    done = resume_run(run.id, workers=1)  # the module recorded with the run is loaded
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


FAILING = textwrap.dedent(
    """
    import os
    from terrapipe import Workflow, task

    @task
    def fragile() -> int:
        if os.path.exists(os.environ["FAIL_FLAG"]):
            raise RuntimeError("the flag is up")
        return 42

    flow = Workflow("fragile-flow")
    flow.add_node(fragile)
    """
)


def _cli(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "terrapipe.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_cli_resume_of_a_user_module_run_needs_no_module(tmp_path: Path, db_url: str) -> None:
    """`runs resume ID` loads the workflow from the module recorded at `run --module`
    (given relative to another folder); once that file is gone, the message names it."""
    src = tmp_path / "src"
    src.mkdir()
    module = src / "fragile_flow.py"
    module.write_text(FAILING)
    flag = tmp_path / "flag"
    flag.touch()
    env = {**os.environ, "TERRAPIPE_HOME": str(tmp_path / "home"), "FAIL_FLAG": str(flag)}
    env["TERRAPIPE_DATABASE_URL"] = db_url
    done = _cli("run", "fragile-flow", "--module", "fragile_flow.py", "--json", cwd=src, env=env)
    assert done.returncode == 1, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    flag.unlink()
    done = _cli("runs", "resume", run_id, "--json", cwd=tmp_path, env=env)  # no --module
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["state"] == "succeeded" and doc["nodes"]["fragile"]["outputs"] == 42

    flag.touch()
    args = ["run", "fragile-flow", "--module", str(module), "--force", "--json"]
    failed = _cli(*args, cwd=src, env=env)
    assert failed.returncode == 1
    again = json.loads(failed.stdout)["run_id"]
    module.rename(tmp_path / "moved.py")
    done = _cli("runs", "resume", again, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(module) in lines[0] and "--module" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
