"""Ctrl-C on `terrapipe run`: the run ends cancelled and no half-written artifact is kept."""

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

SLOW_MODULE = textwrap.dedent(
    """
    from pathlib import Path
    from terrapipe import Workflow, task

    @task
    def parts(marker: str) -> list:
        return list(range(4))

    @task
    def write(ctx, item: int, marker: str) -> dict:
        path = ctx.artifact_path(f"part-{item}.bin")
        with path.open("wb") as fh:
            fh.write(b"x" * 1000)
            Path(marker).touch()
            for _ in range(200):
                ctx.sleep(0.05)
        return {"file": path}

    slow = Workflow("slow-writer")
    slow.add_node(parts)
    slow.add_node(write, parts, map_over=True)
    """
)


def terrapipe_cmd() -> list[str]:
    return [sys.executable, "-c", "from terrapipe.cli.main import main; main()"]


def test_sigint_cancels_cleanly(tmp_path: Path, tp_home: Path) -> None:
    module = tmp_path / "slow_flows.py"
    module.write_text(SLOW_MODULE)
    marker = tmp_path / "started"
    env = {**os.environ, "TERRAPIPE_HOME": str(tp_home)}
    proc = subprocess.Popen(
        [
            *terrapipe_cmd(),
            "run",
            "slow-writer",
            "-m",
            str(module),
            "-p",
            f"marker={marker}",
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    shown = subprocess.run(
        [*terrapipe_cmd(), "runs", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    run = json.loads(shown.stdout)[0]
    assert run["state"] == "cancelled"
    detail = json.loads(
        subprocess.run(
            [*terrapipe_cmd(), "runs", "show", run["run_id"], "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert {n["state"] for n in detail["nodes"]["write"]} == {"cancelled"}
    assert detail["nodes"]["parts"]["state"] == "succeeded"
    artifacts = tp_home / "artifacts"
    files = [p for p in artifacts.rglob("*.bin")] if artifacts.exists() else []
    assert files == [], files
