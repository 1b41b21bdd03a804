"""The sweeper: every worker looks, every few seconds, for running nodes whose lease
expired (their worker died without the broker noticing: SIGKILL, a lost machine) and puts
them back on their queue. A conditional update moves each node once, whichever worker
sees it first; executing a node twice is harmless anyway (keyed outputs, atomic renames).
"""

from __future__ import annotations

import logging
import threading

from terrapipe.settings import Settings

_LOG = logging.getLogger("terrapipe.celery")


def sweep_once(state) -> int:
    """Re-enqueue the nodes whose lease expired, and publish claimed nodes whose message
    could not be sent (the broker was down); how many."""
    from terrapipe.engines.celery import claims
    from terrapipe.engines.celery.app import generation
    from terrapipe.engines.celery.worker import publish

    moved = claims.expired_leases(state.db) + claims.take_unsent(state.db)
    if not moved:
        return 0
    by_run: dict[str, list[str]] = {}
    for run_id, key, _name in moved:
        by_run.setdefault(run_id, []).append(key)
    for run_id, keys in by_run.items():
        info = state.run(run_id)
        if info is None:
            continue
        try:
            workflow = state.workflow(info.workflow, info.version)
        except Exception as exc:  # noqa: BLE001 - the node's message will say so
            _LOG.warning("sweeper: run %s: %s", run_id, exc)
            continue
        _LOG.warning("run %s: enqueued again: %s", run_id, ", ".join(keys))
        publish(state, run_id, workflow, keys, gen=generation(claims.run_started(state.db, run_id)))
    return len(moved)


def start_sweeper(settings: Settings) -> threading.Thread:
    """A daemon thread sweeping every ``settings.sweep_interval_s`` (in this process only;
    a forked pool child does not inherit it)."""
    from terrapipe.engines.celery.worker import WorkerState, worker_state

    stop = threading.Event()

    def loop() -> None:
        state = WorkerState(settings=settings, modules=worker_state().modules)
        while not stop.wait(settings.sweep_interval_s):
            try:
                sweep_once(state)
            except Exception as exc:  # noqa: BLE001 - the database or broker blinked
                _LOG.warning("sweeper: %s", exc)

    thread = threading.Thread(target=loop, name="terrapipe-sweeper", daemon=True)
    thread.start()
    return thread
