"""The one narrow contract every engine implements, and the recorded run it is handed.

``terrapipe.runs`` validates and records a run, then hands an engine a :class:`RunJob`;
the engine gets every node instance of that run to a final state by calling
``execute_node``. Policy (cache, retries, reasons, recording) lives in ``execute_node``,
above the engine, as httpx keeps auth and redirects above its transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from terrapipe.core.context import RunStore
from terrapipe.core.plan import RunPlan
from terrapipe.core.workflow import Workflow


@dataclass
class RunJob:
    """A run already recorded in ``store``: what an engine needs to execute it."""

    run_id: str
    workflow: Workflow
    params: dict[str, Any]
    store: RunStore
    force: bool = False
    workers: int | None = None  # pool size, for engines that have one
    on_update: Callable[[RunPlan], Any] | None = None  # progress, at most every 0.1 s
    own_db: bool = False  # the engine disposes ``store.db`` once the run is handed off / over
    claimed: bool = False  # already recorded running, owned by this process (a runner's claim)


class Engine(Protocol):
    """Executes recorded runs. Registered by name in :mod:`terrapipe.engines`."""

    name: str

    def run(self, job: RunJob, *, wait: bool = True) -> RunPlan | None:
        """Get every node instance of ``job`` to a final state.

        ``wait=True``: return once the run is final (with the in-memory plan, if the
        engine has one, so the caller need not read the run back). ``wait=False``: return
        as soon as the run is recorded as started and handed off (a thread, a broker);
        the run's record in the store tells how it goes on.
        """
        ...
