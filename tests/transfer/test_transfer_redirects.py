"""Credentials follow a download only to the origin it was asked of (issue 10, item 3).

Real servers on 127.0.0.1 record every header they receive: a provider's API key and its
basic credentials must reach the configured server, never the one it redirects to, and an
https -> http redirect is refused before anything is sent in clear.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from transfer_http_server import HttpTestServer

from terrapipe.errors import DownloadError
from terrapipe.transfer.download import Downloader
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.policy import RetryPolicy, TransferOptions
from terrapipe.transfer.providers import ProviderRegistry, parse_provider_settings

FAST = TransferOptions(retry=RetryPolicy(attempts=2, backoff_s=0.01), read_timeout_s=5)
API_KEY = "K3y-0f-the-Pr0vider"


def _downloader(tmp_path: Path, settings: dict) -> Downloader:
    registry = ProviderRegistry(parse_provider_settings(settings))
    return Downloader(registry, locks=LockFactory(lock_dir=tmp_path / "locks"), options=FAST)


def _data(n: int = 4000) -> bytes:
    return (hashlib.sha256(b"redirect").digest() * (n // 32 + 1))[:n]


def _leaked(server: HttpTestServer) -> list[dict[str, str]]:
    """The requests of ``server`` that carried a credential of the provider."""
    return [h for h in server.state.headers if "x-api-key" in h or "authorization" in h]


def test_redirect_to_another_port_drops_every_provider_header(tmp_path):
    with HttpTestServer() as origin, HttpTestServer() as other:
        data = _data()
        origin.state.files["r.nc"] = other.state.files["r.nc"] = data
        origin.state.redirect_base = other.base  # same host 127.0.0.1, another port
        settings = {
            origin.base: {
                "username": origin.state.user,
                "password": origin.state.password,
                "headers": {"X-Api-Key": API_KEY},
            }
        }
        with _downloader(tmp_path, settings) as d:
            path = d.fetch(f"{origin.base}/redirect/pub/r.nc", tmp_path / "away")
        assert path.read_bytes() == data
        first = origin.state.headers[0]
        expected = "Basic " + base64.b64encode(b"alice:s3cr3t-Pa55").decode()
        assert first["x-api-key"] == API_KEY and first["authorization"] == expected
        assert len(other.state.headers) == 1 and _leaked(other) == []


def test_redirect_on_the_same_origin_keeps_the_credentials(tmp_path):
    with HttpTestServer() as origin:
        origin.state.files["p.nc"] = _data()
        settings = {
            origin.base + "/": {
                "username": origin.state.user,
                "password": origin.state.password,
                "headers": {"X-Api-Key": API_KEY},
            },
        }
        with _downloader(tmp_path, settings) as d:
            # /redirect/private/NAME -> /private/NAME needs the basic credentials again
            path = d.fetch(f"{origin.base}/redirect/private/p.nc", tmp_path / "same")
        assert path.read_bytes() == _data()
        assert [h.get("x-api-key") for h in origin.state.headers] == [API_KEY, API_KEY]


def test_https_to_http_redirect_is_refused_before_sending(https_server, http_server, tmp_path):
    https_server.state.files["t.nc"] = http_server.state.files["t.nc"] = _data()
    https_server.state.redirect_base = http_server.base
    settings = {
        https_server.base: {
            "username": "alice",
            "password": "s3cr3t-Pa55",
            "headers": {"X-Api-Key": API_KEY},
            "ca_bundle": str(https_server.ca_file),
        }
    }
    url = f"{https_server.base}/redirect/pub/t.nc"
    with _downloader(tmp_path, settings) as d, pytest.raises(DownloadError) as err:
        d._sleep = lambda s: pytest.fail("a refused downgrade is not retried")
        d.fetch_first([url], tmp_path / "down")
    message = str(err.value)
    assert "https to plain http" in message and f"{http_server.base}/pub/t.nc" in message
    assert http_server.state.headers == []  # nothing, let alone the credentials, went in clear
    assert not (tmp_path / "down" / "t.nc").exists()
    assert not (tmp_path / "down" / "t.nc.part").exists()


def test_provider_prefix_matches_only_at_a_url_boundary(http_server, tmp_path):
    """A prefix that is a textual prefix of another port (``:4567`` of ``:45678``) or host
    does not apply: the server on the longer port never sees the provider's key."""
    http_server.state.files["b.nc"] = _data()
    short = f"http://127.0.0.1:{str(http_server.port)[:-1]}"
    settings = {short: {"username": "alice", "password": "pw-x", "headers": {"X-Api-Key": API_KEY}}}
    with _downloader(tmp_path, settings) as d:
        path = d.fetch(http_server.url("pub", "b.nc"), tmp_path / "b")
    assert path.read_bytes() == _data()
    assert len(http_server.state.headers) == 1 and _leaked(http_server) == []


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://data.example.org/x.nc", "data"),
        ("https://DATA.Example.ORG:443/x.nc", "data"),
        ("https://data.example.org", "data"),
        ("https://data.example.org?x=1", "data"),
        ("https://data.example.org.attacker.net/x.nc", None),
        ("https://data.example.org@evil.net/x.nc", None),
        ("https://data.example.org:8443/x.nc", None),
        ("http://data.example.org/x.nc", None),
        ("https://data.example.org/pub/x.nc", "pub"),
        ("https://data.example.org/public/x.nc", "data"),
    ],
)
def test_prefix_boundary_and_normalisation(url, expected):
    registry = ProviderRegistry(
        parse_provider_settings(
            {
                "https://data.example.org": {"username": "data"},
                "https://data.example.org/pub": {"username": "pub"},
            }
        )
    )
    assert registry.for_url(url).username == expected
