"""Downloads through HTTP(S) proxies from the environment (issue 9): a real forwarding proxy
on 127.0.0.1 records what it is asked: a CONNECT tunnel for https, an absolute-form request
for http; NO_PROXY hosts go direct; the proxy's credentials never go further."""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path

import pytest
from transfer_proxy import ProxyTestServer

from terrapipe.errors import DownloadError, InvalidInput
from terrapipe.transfer.download import Downloader
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.policy import RetryPolicy, TransferOptions
from terrapipe.transfer.providers import ProviderRegistry, parse_provider_settings
from terrapipe.transfer.proxies import bypasses

FAST = TransferOptions(retry=RetryPolicy(attempts=2, backoff_s=0.01), read_timeout_s=5)
PROXY_USER, PROXY_PASSWORD = "proxy-user", "Pr0xy-Pa55w0rd"
DATA = (hashlib.sha256(b"proxied").digest() * 4000)[:100_000]
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def environment(monkeypatch):
    """A clean proxy environment; returns a setter."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch.setenv


def _downloader(tmp_path: Path, settings: dict | None = None) -> Downloader:
    registry = ProviderRegistry(parse_provider_settings(settings or {}))
    return Downloader(registry, locks=LockFactory(lock_dir=tmp_path / "locks"), options=FAST)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_https_goes_through_a_connect_tunnel_with_the_proxy_credentials(
    https_server, tmp_path, environment, caplog
):
    https_server.state.files["t.nc"] = DATA
    settings = {
        https_server.base: {
            "username": https_server.state.user,
            "password": https_server.state.password,
            "ca_bundle": str(https_server.ca_file),
        }
    }
    with ProxyTestServer(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy:
        environment("HTTPS_PROXY", proxy.url(PROXY_USER, PROXY_PASSWORD))
        with caplog.at_level(logging.DEBUG), _downloader(tmp_path, settings) as d:
            path = d.fetch(https_server.url("private", "t.nc"), tmp_path / "dl")
    assert path.read_bytes() == DATA
    assert proxy.seen == [
        ("CONNECT", f"127.0.0.1:{https_server.port}", _basic(PROXY_USER, PROXY_PASSWORD))
    ]
    (received,) = https_server.state.headers  # the origin: its own credentials, not the proxy's
    assert "proxy-authorization" not in received and received["authorization"].startswith("Basic")
    assert PROXY_PASSWORD not in caplog.text


def test_http_goes_to_the_proxy_in_absolute_form(http_server, tmp_path, environment):
    http_server.state.files["h.nc"] = DATA
    http_server.state.files["h2.nc"] = DATA[:5000]
    with ProxyTestServer() as proxy:
        environment("http_proxy", proxy.url())
        with _downloader(tmp_path) as d:
            first = d.fetch(http_server.url("pub", "h.nc"), tmp_path / "dl")
            second = d.fetch(http_server.url("pub", "h2.nc"), tmp_path / "dl")
    assert first.read_bytes() == DATA and second.read_bytes() == DATA[:5000]
    assert proxy.seen == [
        ("GET", http_server.url("pub", "h.nc"), None),
        ("GET", http_server.url("pub", "h2.nc"), None),
    ]
    assert [p for _, p, _ in http_server.state.requests] == ["/pub/h.nc", "/pub/h2.nc"]


def test_no_proxy_hosts_are_reached_directly(http_server, tmp_path, environment):
    http_server.state.files["d.nc"] = http_server.state.files["p.nc"] = DATA
    with ProxyTestServer() as proxy:
        environment("HTTP_PROXY", proxy.url())
        environment("NO_PROXY", "example.org, localhost")
        with _downloader(tmp_path) as d:
            direct = d.fetch(f"http://localhost:{http_server.port}/pub/d.nc", tmp_path / "a")
            proxied = d.fetch(http_server.url("pub", "p.nc"), tmp_path / "b")
    assert direct.read_bytes() == DATA and proxied.read_bytes() == DATA
    assert [target for _, target, _ in proxy.seen] == [http_server.url("pub", "p.nc")]
    assert len(http_server.state.requests) == 2


def test_a_proxy_refusing_the_credentials_is_a_clear_error(https_server, tmp_path, environment):
    https_server.state.files["r.nc"] = DATA
    settings = {https_server.base: {"ca_bundle": str(https_server.ca_file)}}
    with ProxyTestServer(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy:
        environment("HTTPS_PROXY", proxy.url(PROXY_USER, "Wr0ng-Pa55w0rd"))
        with _downloader(tmp_path, settings) as d, pytest.raises(DownloadError) as err:
            d.fetch_first([https_server.url("pub", "r.nc")], tmp_path / "dl")
    message = str(err.value)
    assert "407" in message and f"127.0.0.1:{proxy.port}" in message
    assert "Wr0ng-Pa55w0rd" not in message and PROXY_USER not in message
    assert https_server.state.headers == []


def test_an_unsupported_proxy_url_is_named(tmp_path, environment):
    environment("HTTPS_PROXY", "socks5://user:S0cks-Secret@127.0.0.1:1080")
    with pytest.raises(InvalidInput, match="HTTPS_PROXY") as err:
        _downloader(tmp_path)
    assert "S0cks-Secret" not in str(err.value)


@pytest.mark.parametrize(
    "host,port,no_proxy,expected",
    [
        ("data.example.org", 443, "example.org", True),
        ("example.org", 443, "example.org", True),
        ("data.example.org", 443, ".example.org", True),
        ("badexample.org", 443, "example.org", False),
        ("example.org.evil.net", 443, "example.org", False),
        ("anything.net", 80, "*", True),
        ("10.1.2.3", 80, "10.0.0.0/8", True),
        ("11.1.2.3", 80, "10.0.0.0/8", False),
        ("127.0.0.1", 8080, "127.0.0.1:8080", True),
        ("127.0.0.1", 9090, "127.0.0.1:8080", False),
        ("Data.Example.ORG", 443, " other.net , EXAMPLE.org ", True),
        ("::1", 80, "::1", True),
        ("data.example.org", 443, "", False),
    ],
)
def test_no_proxy_matching_like_curl(host, port, no_proxy, expected):
    assert bypasses(host, port, no_proxy) is expected
