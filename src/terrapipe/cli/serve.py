"""``terrapipe serve``: the HTTP service (OGC API – Processes and Features) under uvicorn."""

from __future__ import annotations

import os
import subprocess

import typer

from terrapipe.errors import InvalidInput

MODULES_ENV = "TERRAPIPE_SERVE_MODULES"  # how the worker processes learn --module


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
        workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
        module: list[str] = typer.Option(
            [], "--module", "-m", help="Also offer the workflows of this file or module."
        ),
        jobs: int = typer.Option(
            4, "--jobs", min=1, max=256, help="Local jobs the job runner executes at once."
        ),
        access_log: bool = typer.Option(
            False, "--access-log/--no-access-log", help="Log every request (off: faster)."
        ),
    ) -> None:
        """Serve workflows as OGC API – Processes and layers as OGC API – Features.

        Jobs run on the local engine in a job runner process started alongside the server
        (up to --jobs at once), or on Celery workers when TERRAPIPE_BROKER_URL is set. Reads
        are public; with TERRAPIPE_AUTH=on execution and dismiss need a token
        (`terrapipe tokens create NAME`).
        """
        import uvicorn

        from terrapipe.api.runner import JOBS_ENV, RUNNER_ENV
        from terrapipe.settings import get_settings
        from terrapipe.store.db import open_database

        _check_address(host, port)
        settings = get_settings()
        with open_database(settings):  # migrate once, before the workers start
            pass
        os.environ[MODULES_ENV] = os.pathsep.join(module)
        os.environ[JOBS_ENV] = str(jobs)
        runner = None if settings.broker_url else _start_runner()
        try:
            if runner is not None:
                os.environ[RUNNER_ENV] = runner[1]
            uvicorn.run(
                "terrapipe.api.app:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=os.environ.get("TERRAPIPE_LOG_LEVEL", "warning").lower(),
                access_log=access_log,
            )
        except OSError as exc:
            raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        finally:
            if runner is not None:
                _stop_runner(runner[0])


def _start_runner() -> tuple[subprocess.Popen, str]:
    """Start the job runner process (:mod:`terrapipe.api.runner`); it and its identity, as
    the server processes find it in their environment."""
    import sys

    from terrapipe.api.runner import owner_to_env
    from terrapipe.core.owner import Owner, hostname, process_start

    proc = subprocess.Popen([sys.executable, "-m", "terrapipe.api.runner"])
    return proc, owner_to_env(Owner(hostname(), proc.pid, process_start(proc.pid)))


def _stop_runner(proc: subprocess.Popen) -> None:
    """Ask the runner to stop (it lets the jobs in hand finish for a few seconds)."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address that cannot be listened on (taken, not local)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InvalidInput(
                f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port or --host"
            ) from None
