"""A live terrapipe service on 127.0.0.1 (uvicorn in a thread) for real HTTP clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

FLOWS = str(Path(__file__).with_name("flows.py"))


@dataclass
class LiveService:
    url: str
    settings: object
    db: object
    data_root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(settings, db, modules=(FLOWS,)) -> tuple[uvicorn.Server, threading.Thread, str]:
    from terrapipe.api.app import create_app

    app = create_app(settings, db=db, modules=modules)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/conformance", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.025)
    return server, thread, url


@pytest.fixture
def live(tmp_path: Path, tp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveService]:
    from terrapipe.settings import get_settings
    from terrapipe.store.db import open_database

    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("TERRAPIPE_DATA_ROOTS", str(root))
    settings = get_settings()
    db = open_database(settings)
    server, thread, url = start_service(settings, db)
    yield LiveService(url, settings, db, root)
    server.should_exit = True
    thread.join(10)
    db.dispose()
