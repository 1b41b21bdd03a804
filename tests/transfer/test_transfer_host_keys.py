"""SFTP refuses unknown host keys by default (issue 10, item 4), against the tests' real
SFTP server: an unknown key ends the connection before the password is sent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from terrapipe.errors import DownloadError, ProviderSettingsError
from terrapipe.transfer.download import Downloader
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.policy import RetryPolicy, TransferOptions
from terrapipe.transfer.providers import ProviderRegistry, parse_provider_settings

FAST = TransferOptions(retry=RetryPolicy(attempts=3, backoff_s=0.01), read_timeout_s=5)
DATA = bytes(range(256)) * 40


def _fetch(server, tmp_path: Path, folder: str, **extra) -> Path:
    (server.root / "k.nc").write_bytes(DATA)
    url = f"sftp://127.0.0.1:{server.port}/k.nc"
    settings = {url: {"username": server.user, "password": server.password, **extra}}
    registry = ProviderRegistry(parse_provider_settings(settings))
    locks = LockFactory(lock_dir=tmp_path / "locks")
    with Downloader(registry, locks=locks, options=FAST) as d:
        d._sleep = lambda s: pytest.fail("a refused host key is not retried")
        return d.fetch_first([url], tmp_path / folder)


def test_unknown_host_key_is_refused_before_the_password(sftp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.ssh/known_hosts of the user
    with pytest.raises(DownloadError) as err:
        _fetch(sftp_server, tmp_path, "refused")
    message = str(err.value)
    assert "unknown SSH host key" in message and f"127.0.0.1]:{sftp_server.port}" in message
    assert "known_hosts" in message and "accept_unknown_host_keys" in message
    assert sftp_server.password not in message
    assert sftp_server.auth_log == []  # the server never saw the password (nor the user)
    assert not (tmp_path / "refused" / "k.nc").exists()
    assert not (tmp_path / "refused" / "k.nc.part").exists()


def test_a_known_hosts_file_with_the_key_is_trusted(sftp_server, tmp_path):
    path = _fetch(sftp_server, tmp_path, "known", known_hosts=str(sftp_server.known_hosts))
    assert path.read_bytes() == DATA
    assert sftp_server.auth_log == [(sftp_server.user, sftp_server.password)]


def test_a_known_hosts_file_with_another_key_is_refused(sftp_server, tmp_path):
    import paramiko

    other = paramiko.RSAKey.generate(1024)
    known = tmp_path / "other_known_hosts"
    known.write_text(f"[127.0.0.1]:{sftp_server.port} ssh-rsa {other.get_base64()}\n")
    with pytest.raises(DownloadError, match="does not match its known_hosts entry"):
        _fetch(sftp_server, tmp_path, "mismatch", known_hosts=str(known))
    assert sftp_server.auth_log == []


def test_accepting_unknown_keys_is_explicit_and_logged(sftp_server, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with caplog.at_level(logging.WARNING):
        path = _fetch(sftp_server, tmp_path, "accepted", accept_unknown_host_keys=True)
    assert path.read_bytes() == DATA
    assert "accepting the unknown SSH host key" in caplog.text
    assert sftp_server.password not in caplog.text


def test_accept_option_must_be_a_boolean():
    with pytest.raises(ProviderSettingsError, match="accept_unknown_host_keys"):
        parse_provider_settings({"sftp://h/": {"accept_unknown_host_keys": "yes"}})


def test_publication_refuses_an_unknown_host_key_too(sftp_server, tmp_path, monkeypatch):
    from terrapipe.errors import PublishError
    from terrapipe.transfer import publish

    product, target = _publication(sftp_server, tmp_path, monkeypatch)
    with pytest.raises(PublishError, match="unknown SSH host key"):
        publish(product, target)
    assert sftp_server.auth_log == []
    assert not (sftp_server.root / "pub").exists()


def test_publication_accepts_an_unknown_host_key_only_when_told(sftp_server, tmp_path, monkeypatch):
    from terrapipe.transfer import publish

    product, target = _publication(
        sftp_server, tmp_path, monkeypatch, accept_unknown_host_keys=True
    )
    publish(product, target)
    assert (sftp_server.root / "pub" / "p.txt").read_text() == "product"


def _publication(sftp_server, tmp_path, monkeypatch, **options):
    """A product file and an SFTP publication target on the test server (no known_hosts)."""
    from terrapipe.transfer import Secret, SftpPublishTarget

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    product = tmp_path / "p.txt"
    product.write_text("product")
    target = SftpPublishTarget(
        host="127.0.0.1",
        port=sftp_server.port,
        root="/pub",
        url_prefix="https://example.org/pub",
        username=sftp_server.user,
        password=Secret(sftp_server.password),
        **options,
    )
    return product, target
