"""``terrapipe serve``: the HTTP service (OGC API – Processes and Features) under uvicorn."""

from __future__ import annotations

import os

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
    ) -> None:
        """Serve workflows as OGC API – Processes and layers as OGC API – Features.

        Jobs run on the local engine in the background, or on Celery workers when
        TERRAPIPE_BROKER_URL is set. Reads are public; with TERRAPIPE_AUTH=on execution
        and dismiss need a token (`terrapipe tokens create NAME`).
        """
        import uvicorn

        from terrapipe.settings import get_settings
        from terrapipe.store.db import open_database

        _check_address(host, port)
        settings = get_settings()
        with open_database(settings):  # migrate once, before the workers start
            pass
        os.environ[MODULES_ENV] = os.pathsep.join(module)
        try:
            uvicorn.run(
                "terrapipe.api.app:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=os.environ.get("TERRAPIPE_LOG_LEVEL", "warning").lower(),
                access_log=False,
            )
        except OSError as exc:
            raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


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
