"""Downloading one URI / a dataset's URIs against real HTTP, FTP and SFTP servers."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from terrapipe.errors import DownloadError, IntegrityError, UnsupportedScheme
from terrapipe.transfer.download import Downloader, RemoteFile
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.policy import RetryPolicy, TransferOptions
from terrapipe.transfer.providers import ProviderRegistry, parse_provider_settings

FAST = TransferOptions(retry=RetryPolicy(attempts=4, backoff_s=0.01), read_timeout_s=5)


def payload(n: int, seed: int = 1) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1))[:n]


def downloader(tmp_path: Path, providers: dict | None = None, **kw) -> Downloader:
    registry = ProviderRegistry(parse_provider_settings(providers or {}))
    locks = LockFactory(lock_dir=tmp_path / "locks")
    return Downloader(registry, locks=locks, options=kw.pop("options", FAST), **kw)


def test_http_download_verified_and_named_after_uri(http_server, tmp_path):
    data = payload(300_000)
    http_server.state.files["a.tif"] = data
    sha = "sha256:" + hashlib.sha256(data).hexdigest()
    seen = []
    with downloader(tmp_path) as d:
        path = d.fetch(
            RemoteFile(http_server.url("pub", "a.tif"), size=len(data), checksum=sha),
            tmp_path / "out",
            progress=lambda name, done, total: seen.append((name, done, total)),
        )
    assert path == tmp_path / "out" / "a.tif"
    assert path.read_bytes() == data
    assert not (tmp_path / "out" / "a.tif.part").exists()
    assert seen[-1] == ("a.tif", len(data), len(data))


def test_resume_after_cut_uses_range_and_is_byte_identical(http_server, tmp_path):
    data = payload(1_000_000, seed=2)
    http_server.state.files["big.nc"] = data
    http_server.state.faults["big.nc"].extend(["cut"])
    with downloader(tmp_path) as d:
        path = d.fetch(http_server.url("pub", "big.nc"), tmp_path)
    assert path.read_bytes() == data
    ranges = [r for (_, p, r) in http_server.state.requests if p.endswith("big.nc")]
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=")
    assert 0 < int(ranges[1][6:-1]) < len(data)


def test_read_timeout_then_resume(http_server, tmp_path):
    data = payload(400_000, seed=4)
    http_server.state.files["t.bin"] = data
    http_server.state.faults["t.bin"].append("stall")
    options = TransferOptions(retry=RetryPolicy(attempts=3, backoff_s=0.01), read_timeout_s=0.3)
    t0 = time.monotonic()
    with downloader(tmp_path, options=options) as d:
        path = d.fetch(http_server.url("pub", "t.bin"), tmp_path)
    assert time.monotonic() - t0 < 0.9  # gave up on the stalled response after ~0.3 s
    assert path.read_bytes() == data
    assert http_server.state.requests[-1][2] == f"bytes={len(data) // 2}-"


def test_interrupted_part_file_is_resumed_by_next_run(http_server, tmp_path):
    data = payload(200_000, seed=3)
    http_server.state.files["x.bin"] = data
    (tmp_path / "x.bin.part").write_bytes(data[:12_345])
    with downloader(tmp_path) as d:
        path = d.fetch(RemoteFile(http_server.url("pub", "x.bin"), size=len(data)), tmp_path)
    assert path.read_bytes() == data
    assert http_server.state.requests[-1][2] == "bytes=12345-"


def test_503_then_success_and_429_honours_retry_after(http_server, tmp_path):
    data = payload(5_000)
    http_server.state.files["f.txt"] = data
    http_server.state.faults["f.txt"].extend(["503", "429"])
    slept = []
    with downloader(tmp_path) as d:
        d._sleep = slept.append
        path = d.fetch(http_server.url("pub", "f.txt"), tmp_path)
    assert path.read_bytes() == data
    assert len(slept) == 2 and slept[1] == 1.0  # Retry-After: 1
    assert len(http_server.state.requests) == 3


def test_wrong_content_length_is_recovered_by_resume(http_server, tmp_path):
    data = payload(10_000)
    http_server.state.files["bad.nc"] = data
    http_server.state.faults["bad.nc"].append("badlen")
    with downloader(tmp_path) as d:
        path = d.fetch(http_server.url("pub", "bad.nc"), tmp_path)
    assert path.read_bytes() == data
    assert http_server.state.requests[-1][2] == "bytes=10000-"  # answered 416 */10000


def test_failed_uri_leaves_no_part_and_next_uri_is_tried(http_server, tmp_path):
    data = payload(100_000)
    http_server.state.files["bad.nc"] = data
    http_server.state.files["good.nc"] = data
    http_server.state.faults["bad.nc"].extend(["cut"] * 10)
    uris = [
        RemoteFile(http_server.url("pub", "bad.nc"), size=len(data)),
        RemoteFile(http_server.url("pub", "good.nc"), size=len(data)),
    ]
    with downloader(tmp_path) as d:
        path = d.fetch_first(uris, tmp_path / "ds")
    assert path.name == "good.nc" and path.read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["good.nc"]
    assert sum(1 for _, p, _ in http_server.state.requests if p.endswith("bad.nc")) == 4


def test_all_uris_failing_raise_one_error_listing_each(http_server, tmp_path):
    http_server.state.files["s.nc"] = payload(1000)
    uris = [
        http_server.url("pub", "missing.nc"),
        "gopher://old.example.org/s.nc",
        RemoteFile(http_server.url("pub", "s.nc"), size=999),
        RemoteFile(http_server.url("pub", "s.nc"), checksum="md5:" + "0" * 32),
    ]
    with downloader(tmp_path) as d, pytest.raises(DownloadError) as info:
        d.fetch_first(uris, tmp_path / "ds")
    assert len(info.value.failures) == 4
    reasons = [why for _, why in info.value.failures]
    assert "404" in reasons[0] and "'gopher'" in reasons[1]
    assert "size mismatch" in reasons[2] and "md5 mismatch" in reasons[3]
    assert list((tmp_path / "ds").iterdir()) == []


def test_size_cap_refuses_large_file(http_server, tmp_path):
    http_server.state.files["huge.bin"] = payload(50_000)
    options = TransferOptions(max_file_size=10_000, retry=RetryPolicy(attempts=1))
    with downloader(tmp_path, options=options) as d, pytest.raises(IntegrityError, match="cap"):
        d.fetch(http_server.url("pub", "huge.bin"), tmp_path)


def test_basic_auth_and_no_credential_in_logs_or_errors(http_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    state = http_server.state
    state.files["p.nc"] = payload(4000)
    settings = {http_server.base + "/private/": {"username": "${TP_U}", "password": "${TP_P}"}}
    os.environ["TP_U"], os.environ["TP_P"] = state.user, state.password
    try:
        with downloader(tmp_path, settings) as d:
            assert d.fetch(http_server.url("private", "p.nc"), tmp_path).stat().st_size == 4000
            # wrong password in the URL userinfo for a prefix without settings: 401, no leak
            bad = http_server.url("private", "p.nc").replace("://", "://alice:W0rngPwd99@")
            d2 = downloader(tmp_path)
            with pytest.raises(DownloadError) as info:
                d2.fetch_first([bad], tmp_path / "b")
            d2.close()
    finally:
        del os.environ["TP_U"], os.environ["TP_P"]
    text = caplog.text + str(info.value) + repr(info.value.failures)
    assert "401" in str(info.value)
    for secret in (state.password, "W0rngPwd99", "YWxpY2U6"):  # YWxpY2U6 = base64("alice:")
        assert secret not in text
    assert repr(d.providers.for_url(http_server.url("private", "p.nc"))).count(state.password) == 0


def test_oauth2_token_fetched_once_for_many_concurrent_downloads(http_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    state = http_server.state
    for i in range(10):
        state.files[f"o{i}.nc"] = payload(2000, seed=i)
    settings = {
        http_server.base + "/oauth/": {
            "authentication_type": "oauth2",
            "token_url": http_server.base + "/token",
            "client_id": state.client_id,
            "client_secret": state.client_secret,
        }
    }
    results = []
    with downloader(tmp_path, settings) as d:
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(
                    d.fetch(http_server.url("oauth", f"o{i}.nc"), tmp_path / str(i))
                )
            )
            for i in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 10
    assert state.token_requests == 1
    token = next(iter(state.tokens))
    assert token not in caplog.text and state.client_secret not in caplog.text


def test_ftp_download_with_credentials_and_rest_resume(ftp_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    data = payload(400_000, seed=7)
    (ftp_server["root"] / "f.nc").write_bytes(data)
    (tmp_path / "f.nc.part").write_bytes(data[:100_000])
    url = f"ftp://127.0.0.1:{ftp_server['port']}/f.nc"
    settings = {url: {"username": ftp_server["user"], "password": ftp_server["password"]}}
    with downloader(tmp_path, settings) as d:
        path = d.fetch(RemoteFile(url, size=len(data)), tmp_path)
    assert path.read_bytes() == data
    assert ftp_server["password"] not in caplog.text


def test_ftp_wrong_password_is_not_retried_and_not_leaked(ftp_server, tmp_path):
    (ftp_server["root"] / "f.nc").write_bytes(b"x" * 10)
    url = f"ftp://carol:Wr0ngFtpPw@127.0.0.1:{ftp_server['port']}/f.nc"
    with downloader(tmp_path) as d, pytest.raises(DownloadError) as info:
        d.fetch_first([url], tmp_path)
    assert "Wr0ngFtpPw" not in str(info.value) and "530" in str(info.value)


def test_sftp_download_and_credentials_required(sftp_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    data = payload(300_000, seed=9)
    (sftp_server.root / "s.nc").write_bytes(data)
    url = f"sftp://127.0.0.1:{sftp_server.port}/s.nc"
    with downloader(tmp_path) as d, pytest.raises(UnsupportedScheme, match="credentials"):
        d.fetch(url, tmp_path)
    settings = {
        url: {
            "username": sftp_server.user,
            "password": sftp_server.password,
            "known_hosts": str(sftp_server.known_hosts),
        }
    }
    (tmp_path / "s.nc.part").write_bytes(data[:1000])
    with downloader(tmp_path, settings) as d:
        path = d.fetch(RemoteFile(url, size=len(data)), tmp_path)
    assert path.read_bytes() == data
    bad = {url: {**settings[url], "password": "N0tTheRightOne"}}
    with downloader(tmp_path, bad) as d, pytest.raises(DownloadError) as info:
        d.fetch_first([url], tmp_path / "bad")
    assert "authentication failed" in str(info.value)
    for secret in (sftp_server.password, "N0tTheRightOne"):
        assert secret not in caplog.text and secret not in str(info.value)


def test_file_scheme(tmp_path):
    src = tmp_path / "src" / "a b.tif"
    src.parent.mkdir()
    src.write_bytes(payload(3000))
    with downloader(tmp_path) as d:
        path = d.fetch(src.as_uri(), tmp_path / "out")
    assert path.name == "a b.tif" and path.read_bytes() == src.read_bytes()


def test_unsupported_scheme_is_named():
    with pytest.raises(UnsupportedScheme, match="'gopher'"):
        RemoteFile("gopher://x/y")


def test_chunked_body_then_same_connection_again(http_server, tmp_path):
    data = payload(100_003, seed=11)
    http_server.state.files["c.bin"] = data
    with downloader(tmp_path) as d:
        first = d.fetch(f"{http_server.base}/chunked/c.bin", tmp_path / "a")
        second = d.fetch(f"{http_server.base}/chunked/c.bin", tmp_path / "b")
    assert first.read_bytes() == data and second.read_bytes() == data


def test_redirects_followed_and_credentials_not_sent_to_another_host(tmp_path):
    from transfer_http_server import HttpTestServer

    with HttpTestServer() as origin, HttpTestServer() as other:
        data = payload(5000, seed=12)
        origin.state.files["r.nc"] = other.state.files["r.nc"] = data
        settings = {origin.base: {"username": "alice", "password": "Sup3rS3cret"}}
        with downloader(tmp_path, settings) as d:
            same = d.fetch(f"{origin.base}/redirect/pub/r.nc", tmp_path / "same")
            origin.state.redirect_base = other.base
            away = d.fetch(f"{origin.base}/redirect/pub/r.nc", tmp_path / "away")
        assert same.read_bytes() == data and away.read_bytes() == data
        assert origin.state.authorizations[1] is not None  # same host: kept
        assert other.state.authorizations == [None]  # another host: dropped


def test_https_with_ca_bundle_resume_and_auth(https_server, tmp_path):
    state = https_server.state
    data = payload(700_000, seed=13)
    state.files["tls.nc"] = data
    state.faults["tls.nc"].append("cut")
    url = https_server.url("private", "tls.nc")
    with downloader(tmp_path) as d, pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        d._sleep = lambda s: pytest.fail("a certificate failure is not retried")
        d.fetch_first([url], tmp_path / "untrusted")
    settings = {
        https_server.base: {
            "username": state.user,
            "password": state.password,
            "ca_bundle": str(https_server.ca_file),
        }
    }
    with downloader(tmp_path, settings) as d:
        path = d.fetch(RemoteFile(url, size=len(data)), tmp_path / "ok")
    assert path.read_bytes() == data
    assert [r for _, p, r in state.requests if p.endswith("tls.nc")][-1] is not None
