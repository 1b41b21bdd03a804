"""The CLI's exit codes, in one place: for errors raised and for runs that finished.

0    ok
1    the run failed (a task broke), or the store failed
2    bad usage or bad input (also a run whose every failed node failed on bad input)
130  cancelled (Ctrl-C, SIGTERM, `runs cancel`) or interrupted
"""

from __future__ import annotations

from typing import Any

from terrapipe import errors
from terrapipe.core.states import RunState

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

# error class -> exit code; the first matching class (in order) wins
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (errors.TaskError, EXIT_RUN_FAILED),
    (errors.Cancelled, EXIT_CANCELLED),
    (errors.StoreError, EXIT_RUN_FAILED),
    (errors.InvalidInput, EXIT_USAGE),
    (errors.NotFound, EXIT_USAGE),
    (errors.TerrapipeError, EXIT_RUN_FAILED),
)

# final run state -> exit code (a failed run on bad input only: EXIT_USAGE, see below)
RUN_EXIT_CODES: dict[str, int] = {
    RunState.SUCCEEDED: EXIT_OK,
    RunState.FAILED: EXIT_RUN_FAILED,
    RunState.CANCELLED: EXIT_CANCELLED,
    RunState.INTERRUPTED: EXIT_CANCELLED,
    RunState.EXPIRED: EXIT_RUN_FAILED,
}


def exit_code_for(exc: BaseException) -> int:
    """The exit code of an error."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_RUN_FAILED


def exit_code_for_run(run: Any) -> int:
    """The exit code of a finished run (``terrapipe.runs.Run``)."""
    if run.state == RunState.FAILED and run.failed_on_input:
        return EXIT_USAGE
    return RUN_EXIT_CODES.get(run.state, EXIT_RUN_FAILED)
