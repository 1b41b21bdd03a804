"""A run whose process is killed: ``kill -9`` leaves it to be found ``interrupted`` and
finished by ``runs resume`` (earlier nodes cached); SIGTERM ends it ``cancelled`` cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

MODULE = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from terrapipe import Workflow, task

    # the flag file comes from the environment: a str parameter naming a file would enter
    # the cache key, and the flag is deleted between the runs on purpose
    @task
    def parts() -> list:
        return list(range(4))

    @task
    def write(ctx, item: int) -> dict:
        flag = os.environ["RESUMABLE_FLAG"]
        path = ctx.artifact_path(f"part-{item}.bin")
        with path.open("wb") as fh:
            fh.write(bytes([item]) * 1000)
        if item >= 2 and Path(flag).exists():
            Path(f"{flag}.started-{item}").touch()
            while Path(flag).exists():  # hang until the flag goes (or the process dies)
                ctx.sleep(0.05)
        return {"file": path, "item": item}

    flow = Workflow("resumable")
    flow.add_node(parts)
    flow.add_node(write, parts, map_over=True)
    """
)


def terrapipe_cmd() -> list[str]:
    return [sys.executable, "-c", "from terrapipe.cli.main import main; main()"]


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*terrapipe_cmd(), *args], env=env, capture_output=True, text=True, check=check
    )


def start_run(tmp_path: Path, tp_home: Path) -> tuple[subprocess.Popen, Path, Path, dict]:
    module = tmp_path / "resumable_flow.py"
    module.write_text(MODULE)
    flag = tmp_path / "hold"
    flag.touch()
    env = {**os.environ, "TERRAPIPE_HOME": str(tp_home), "RESUMABLE_FLAG": str(flag)}
    proc = subprocess.Popen(
        [*terrapipe_cmd(), "run", "resumable", "-m", str(module), "-w", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = Path(f"{flag}.started-2")
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "node write[2] never started"
        time.sleep(0.05)
    return proc, module, flag, env


def node_states(detail: dict) -> dict[str, str]:
    out = {"parts": detail["nodes"]["parts"]["state"]}
    for n in detail["nodes"]["write"]:
        out[n["key"]] = n["state"]
    return out


def test_kill_9_then_runs_list_shows_interrupted_and_resume_finishes(
    tmp_path: Path, tp_home: Path
) -> None:
    proc, module, flag, env = start_run(tmp_path, tp_home)
    time.sleep(1.0)  # the write-behind recorder flushes every 0.25 s
    listed = json.loads(cli(env, "runs", "list", "--json").stdout)
    assert listed[0]["state"] == "running"  # alive: left alone
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    listed = json.loads(cli(env, "runs", "list", "--json").stdout)
    run = listed[0]
    assert run["state"] == "interrupted"
    assert f"pid {proc.pid}" in run["error"]
    detail = json.loads(cli(env, "runs", "show", run["run_id"], "--json").stdout)
    before = node_states(detail)
    assert before["parts"] == "succeeded"
    assert before["write[0]"] == before["write[1]"] == "succeeded"
    assert before["write[2]"] == "cancelled"  # was running when the process died
    table = cli({**env, "COLUMNS": "200"}, "runs", "list").stdout
    assert "interrupted" in table

    flag.unlink()  # the resumed run does not hang
    resumed = cli(env, "runs", "resume", run["run_id"][:10], "-m", str(module), "--json")
    result = json.loads(resumed.stdout)
    assert result["run_id"] == run["run_id"]
    assert result["state"] == "succeeded"
    after = node_states(result)
    assert after == {
        "parts": "cached",
        "write[0]": "cached",
        "write[1]": "cached",
        "write[2]": "succeeded",
        "write[3]": "succeeded",
    }
    # every part once, with the content its item wrote (read back independently)
    parts = sorted((tp_home / "artifacts").glob("[!.]*/part-*.bin"), key=lambda p: p.name)
    assert [p.name for p in parts] == [f"part-{i}.bin" for i in range(4)]
    for i, p in enumerate(parts):
        assert p.read_bytes() == bytes([i]) * 1000
    final = json.loads(cli(env, "runs", "list", "--json").stdout)
    assert [(r["run_id"], r["state"]) for r in final] == [(run["run_id"], "succeeded")]
    again = cli(env, "runs", "resume", run["run_id"], "-m", str(module), check=False)
    assert again.returncode == 2
    assert "only interrupted, cancelled or failed runs can be resumed" in again.stderr


def test_sigterm_cancels_cleanly(tmp_path: Path, tp_home: Path) -> None:
    proc, _module, _flag, env = start_run(tmp_path, tp_home)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    run = json.loads(cli(env, "runs", "list", "--json").stdout)[0]
    assert run["state"] == "cancelled"
    detail = json.loads(cli(env, "runs", "show", run["run_id"], "--json").stdout)
    states = node_states(detail)
    assert states["write[2]"] == "cancelled"
    assert states["write[0]"] == states["write[1]"] == "succeeded"
    # nothing half-written: the running node's file is gone, staging included
    bins = sorted(p.name for p in (tp_home / "artifacts").rglob("*.bin"))
    assert bins == ["part-0.bin", "part-1.bin"]
