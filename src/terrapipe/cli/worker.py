"""``terrapipe worker [-Q queues] [-c N] [--module FILE_OR_MODULE ...]``: a Celery worker.

It executes node instances of runs submitted with ``--engine celery``, knowing every
registered workflow: built-ins, the ``terrapipe.workflows`` entry points and the given
modules (loaded as ``run --module`` loads them). Settings: TERRAPIPE_BROKER_URL,
TERRAPIPE_DATABASE_URL (PostgreSQL), TERRAPIPE_HOME (its artifact root must be shared by
every worker), TERRAPIPE_NODE_LEASE_S, TERRAPIPE_SWEEP_INTERVAL_S.
"""

from __future__ import annotations

import typer

from terrapipe.errors import InvalidInput


def worker_command(
    queues: str | None = typer.Option(
        None, "--queues", "-Q", help="Comma-separated queues (default: TERRAPIPE_DEFAULT_QUEUE)."
    ),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Slots (processes)."),
    module: list[str] = typer.Option(
        [], "--module", "-m", help="Also load workflows from this module or .py file."
    ),
    pool: str = typer.Option("prefork", "--pool", help="Celery pool: prefork, threads or solo."),
    name: str | None = typer.Option(None, "--name", "-n", help="Worker node name."),
    loglevel: str = typer.Option("WARNING", "--loglevel", "-l", help="Celery log level."),
) -> None:
    """Start a Celery worker executing terrapipe nodes (stops on Ctrl-C / SIGTERM)."""
    import os
    import socket

    from terrapipe.core.registry import load_registry
    from terrapipe.engines.celery import check_database
    from terrapipe.engines.celery.app import celery_app, check_broker_url
    from terrapipe.engines.celery.sweeper import start_sweeper
    from terrapipe.engines.celery.worker import configure_worker
    from terrapipe.settings import get_settings
    from terrapipe.store.db import open_database

    if pool not in ("prefork", "threads", "solo"):
        raise InvalidInput(f"unknown pool {pool!r}; pools: prefork, threads, solo")
    settings = get_settings()
    broker = check_broker_url(settings.broker_url)
    db = open_database(settings)  # migrates; fails early on a bad URL
    try:
        check_database(db)
    finally:
        db.dispose()
    load_registry(module)  # a module that does not load fails here, with its name
    configure_worker(settings, tuple(module), migrated=True)
    app = celery_app(broker, settings.broker_visibility_s)
    queue_list = queues or settings.default_queue
    from celery.signals import worker_process_init, worker_ready

    from terrapipe.engines.celery.worker import warm_up

    worker_process_init.connect(lambda **_: warm_up(), weak=False)

    # the sweeper starts once the pool's processes were forked: they must not inherit its
    # database connections
    worker_ready.connect(lambda **_: start_sweeper(settings), weak=False)
    node_name = name or f"terrapipe-{os.getpid()}@{socket.gethostname()}"
    argv = [
        "worker",
        "-Q",
        queue_list,
        "-c",
        str(concurrency),
        "--pool",
        pool,
        "-n",
        node_name,
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv)


def register(root: typer.Typer) -> None:
    root.command("worker")(worker_command)
