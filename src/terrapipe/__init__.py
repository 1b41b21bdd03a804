"""terrapipe: geospatial processing from a local function to a published, cataloged dataset.

from terrapipe import Task, task, Workflow, submit, get_run
"""

from terrapipe.core.runs import Run, get_run, list_runs, submit
from terrapipe.core.task import Param, Task, task
from terrapipe.core.workflow import Workflow

__version__ = "0.1.0"

__all__ = ["Param", "Run", "Task", "Workflow", "get_run", "list_runs", "submit", "task"]
