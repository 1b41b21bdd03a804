"""With TERRAPIPE_AUTH=on, execution and dismiss need a bearer token; reads stay public.
Tokens come from the CLI and only their hash is stored."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import httpx
import pytest
import sqlalchemy as sa
from tests.api.conftest import FLOWS, serve, stop


def _cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "terrapipe.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def secured(tmp_path):
    env = dict(os.environ, TERRAPIPE_HOME=str(tmp_path / "home"), TERRAPIPE_AUTH="on")
    env.pop("TERRAPIPE_DATABASE_URL", None)
    proc, url = serve(env, "--module", FLOWS)
    yield env, url
    stop(proc)


def test_tokens_guard_writes_and_only_hashes_are_stored(secured, tmp_path) -> None:
    env, url = secured
    created = _cli(env, "tokens", "create", "ci-bot")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("tp_") and len(token) > 30
    execute = f"{url}/processes/sums/execution"
    body = {"inputs": {"n": 3}}

    assert httpx.get(f"{url}/processes").status_code == 200  # reads are public
    missing = httpx.post(execute, json=body)
    assert missing.status_code == 401 and missing.json()["status"] == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = httpx.post(execute, json=body, headers={"Authorization": "Bearer tp_wrong"})
    assert wrong.status_code == 401
    ok = httpx.post(execute, json=body, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json() == {"total": 3.0}

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'terrapipe.db'}")
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT name, token_hash FROM api_tokens")).all()
    engine.dispose()
    assert stored == [("ci-bot", hashlib.sha256(token.encode()).hexdigest())]
    database_bytes = (tmp_path / "home" / "terrapipe.db").read_bytes()
    assert token.encode() not in database_bytes

    listed = _cli(env, "tokens", "list", "--json")
    assert '"ci-bot"' in listed.stdout and token not in listed.stdout
    assert _cli(env, "tokens", "revoke", "ci-bot").returncode == 0
    revoked = httpx.post(execute, json=body, headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401
    again = _cli(env, "tokens", "revoke", "ci-bot")
    assert again.returncode == 2 and "no active token" in again.stderr
    assert "Traceback" not in again.stderr


def test_serve_on_a_taken_port_is_one_line_exit_2(tmp_path) -> None:
    import socket

    env = dict(os.environ, TERRAPIPE_HOME=str(tmp_path / "home"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(env, "serve", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; pick another "
        "--port or --host"
    ]
