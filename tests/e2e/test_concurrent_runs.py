"""Several `terrapipe run` processes at once on one home (one SQLite file): all succeed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_three_processes_share_one_store(tp_home: Path) -> None:
    env = {**os.environ, "TERRAPIPE_HOME": str(tp_home)}
    cmd = [sys.executable, "-c", "from terrapipe.cli.main import main; main()", "run", "demo"]
    sizes = [150, 150, 90]
    procs = [
        subprocess.Popen(
            [*cmd, "-p", f"n={n}", "-p", "delay=0.005", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in sizes
    ]
    for n, proc in zip(sizes, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        doc = json.loads(out)
        assert doc["state"] == "succeeded"
        assert doc["nodes"]["total"]["outputs"] == sum(i * i for i in range(1, n + 1))
    listed = subprocess.run(
        [*cmd[:3], "runs", "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert [r["state"] for r in json.loads(listed.stdout)] == ["succeeded"] * 3
