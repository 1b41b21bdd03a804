"""Run the ``terrapipe`` command in a real subprocess, as a user's shell would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

# SGR colour codes only: what a colour terminal legitimately receives.
_SGR = re.compile(r"\x1b\[[0-9;]*m")
OSC8 = "\x1b]8;"  # a terminal hyperlink


def terrapipe(
    *args: str,
    columns: int = 80,
    colour: bool = False,
    pythonpath: list[str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``terrapipe ARGS`` with ``COLUMNS`` set; ``colour`` makes rich behave as on a colour
    terminal (so markup would turn into escape sequences and links); ``pythonpath`` puts
    folders (e.g. another typer release) in front of the inherited ``PYTHONPATH``."""
    env = {**os.environ, "COLUMNS": str(columns), "TERRAPIPE_LOG_LEVEL": "WARNING"}
    env.pop("FORCE_COLOR", None)
    env.pop("NO_COLOR", None)
    if colour:
        env.update(FORCE_COLOR="1", TERM="xterm-256color", COLORTERM="truecolor")
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*pythonpath, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", "from terrapipe.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def plain(output: str) -> str:
    """Output without colour codes (any other escape sequence stays, to be asserted on)."""
    return _SGR.sub("", output)
