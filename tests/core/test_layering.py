"""core knows nothing of engines: importing every core module loads no engine."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import terrapipe.core


def test_core_imports_no_engine() -> None:
    modules = sorted(
        f"terrapipe.core.{m.name}" for m in pkgutil.iter_modules(terrapipe.core.__path__)
    )
    assert "terrapipe.core.plan" in modules and "terrapipe.core.rules" in modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('terrapipe.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "terrapipe.core.execute" in loaded  # the check would see an engine if one came in
    assert [m for m in loaded if m.startswith(("terrapipe.engines", "terrapipe.runs"))] == []


def test_runs_and_url_inputs_import_no_http_layer() -> None:
    """``terrapipe.runs`` (which downloads a resumed run's URL inputs) and the transfer
    module that downloads them know nothing of the HTTP service: importing them, and
    touching what resume needs, loads neither ``terrapipe.api`` nor FastAPI."""
    code = (
        "import json, sys\n"
        "import terrapipe.runs, terrapipe.transfer.url_inputs, terrapipe.transfer.secrets\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "terrapipe.transfer.url_inputs" in loaded
    assert [m for m in loaded if m.startswith(("terrapipe.api", "fastapi", "starlette"))] == []
