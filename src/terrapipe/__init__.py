"""terrapipe: geospatial processing from a local function to a published, cataloged dataset.

from terrapipe import Task, task, Workflow, submit, get_run
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from terrapipe.core.task import Param, Task, task
from terrapipe.core.workflow import Workflow

if TYPE_CHECKING:
    from terrapipe.runs import Run, get_run, list_runs, submit

__version__ = "0.1.0"

__all__ = ["Param", "Run", "Task", "Workflow", "get_run", "list_runs", "submit", "task"]

_FROM_RUNS = frozenset({"Run", "get_run", "list_runs", "submit"})


def __getattr__(name: str) -> Any:
    """``submit`` & co. come from :mod:`terrapipe.runs` (above core and the engines), loaded
    on first use so that importing ``terrapipe.core`` never pulls an engine in."""
    if name in _FROM_RUNS:
        from terrapipe import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'terrapipe' has no attribute {name!r}")
